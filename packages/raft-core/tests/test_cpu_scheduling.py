"""The peer commands' CPU scheduling (``zmqraft.core.cpu_scheduling``): the decision, and in
a process of its own (not this test's), the policy of the calling thread and of a thread it
starts afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from zmqraft.core.cpu_scheduling import SWITCH, wanted

needs_batch = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this system")

_PROBE = """
import os, threading
from zmqraft.core.cpu_scheduling import policy_name, use_batch_scheduling
use_batch_scheduling(os.environ)
seen = []
thread = threading.Thread(target=lambda: seen.append(policy_name()))
thread.start()
thread.join()
print(policy_name(), seen[0])
"""


def policies_after(env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != SWITCH}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("env", [{}, {SWITCH: "1"}, {SWITCH: ""}, {"OTHER": "0"}])
def test_batch_unless_turned_off(env: dict[str, str]) -> None:
    assert wanted(env)


@pytest.mark.parametrize("value", ["0", "no", "OFF", " false "])
def test_the_switch_turns_it_off(value: str) -> None:
    assert not wanted({SWITCH: value})


@needs_batch
def test_the_thread_and_the_threads_it_starts_run_as_batch() -> None:
    assert policies_after({}) == ["SCHED_BATCH", "SCHED_BATCH"]


@needs_batch
def test_turned_off_nothing_changes() -> None:
    assert policies_after({SWITCH: "0"}) == ["SCHED_OTHER", "SCHED_OTHER"]
