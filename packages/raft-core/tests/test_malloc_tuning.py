"""The glibc malloc tunables the ``zmq-raft`` commands re-execute with (malloc_tuning)."""

from __future__ import annotations

import pytest
from zmqraft.core.malloc_tuning import SWITCH, TUNABLES, tuned_environment

GLIBC = ("glibc", "2.36")
OURS = ":".join(f"{key}={value}" for key, value in TUNABLES.items())


def test_an_untuned_environment_gets_every_tunable_and_keeps_the_rest() -> None:
    env = tuned_environment({"PATH": "/bin", "HOME": "/root"}, GLIBC)
    assert env == {"PATH": "/bin", "HOME": "/root", "GLIBC_TUNABLES": OURS}


def test_the_tuned_environment_asks_for_no_second_exec() -> None:
    env = tuned_environment({}, GLIBC)
    assert env is not None
    assert tuned_environment(env, GLIBC) is None


def test_the_users_own_settings_are_kept_and_only_the_missing_ones_added() -> None:
    env = tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.mxfast=64:glibc.malloc.check=3"}, GLIBC)
    assert env is not None
    assert env["GLIBC_TUNABLES"] == (
        "glibc.malloc.mxfast=64:glibc.malloc.check=3:glibc.malloc.tcache_count=256"
    )


def test_a_user_who_set_every_tunable_is_left_alone() -> None:
    given = "glibc.malloc.tcache_count=7:glibc.malloc.mxfast=0"
    assert tuned_environment({"GLIBC_TUNABLES": given}, GLIBC) is None


@pytest.mark.parametrize("value", ["0", "off", "No", "false "])
def test_the_switch_turns_it_off(value: str) -> None:
    assert tuned_environment({SWITCH: value}, GLIBC) is None


def test_the_switch_on_is_the_default() -> None:
    assert tuned_environment({SWITCH: "1"}, GLIBC) is not None


@pytest.mark.parametrize("libc", [("", ""), ("musl", "1.2"), ("glibc", "2.25"), ("glibc", "x.y")])
def test_only_a_glibc_with_a_thread_cache_is_tuned(libc: tuple[str, str]) -> None:
    assert tuned_environment({}, libc) is None
