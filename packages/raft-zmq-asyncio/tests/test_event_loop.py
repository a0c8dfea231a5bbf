"""Which loop the ``zmq-raft`` command picks (``zmqraft.asyncio.event_loop``)."""

from __future__ import annotations

import pytest
from zmqraft.asyncio.event_loop import SWITCH, run, running_loop_name, use_uvloop


@pytest.mark.parametrize("value", ["0", "no", "OFF", " false "])
def test_the_switch_turns_uvloop_off(value: str) -> None:
    assert not use_uvloop({SWITCH: value}, installed=True)


@pytest.mark.parametrize("env", [{}, {SWITCH: "1"}, {SWITCH: ""}, {"OTHER": "0"}])
def test_uvloop_when_installed_and_not_turned_off(env: dict[str, str]) -> None:
    assert use_uvloop(env, installed=True)


def test_no_uvloop_when_it_is_not_installed() -> None:
    assert not use_uvloop({}, installed=False)


async def _name() -> str:
    return running_loop_name()


def test_run_runs_on_the_loop_it_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(SWITCH, raising=False)
    assert run(_name) == "uvloop"
    monkeypatch.setenv(SWITCH, "0")
    assert run(_name) == "asyncio"
