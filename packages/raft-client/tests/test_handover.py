"""``zmqraft.client.sockets.Handover``: the outcome of work a runtime's loop waits for goes
to the loop exactly when the loop still waits for it, and to the runner otherwise."""

from __future__ import annotations

import threading
import time

from zmqraft.client.sockets import Handover


def test_an_outcome_delivered_before_the_wait_is_taken_at_once() -> None:
    handover = Handover()
    work = object()
    handover.expect(work)
    assert handover.deliver(work, "done")
    began = time.monotonic()
    assert handover.wait(work, 5.0) == (True, "done")
    assert time.monotonic() - began < 1.0


def test_the_waiter_gets_an_outcome_delivered_while_it_waits() -> None:
    handover = Handover()
    work = object()
    handover.expect(work)
    delivered: list[bool] = []
    runner = threading.Timer(0.05, lambda: delivered.append(handover.deliver(work, None)))
    runner.start()
    assert handover.wait(work, 5.0) == (True, None)  # None is an outcome like any other
    runner.join()
    assert delivered == [True]


def test_after_a_wait_gives_up_the_runner_reports_the_outcome() -> None:
    handover = Handover()
    work = object()
    handover.expect(work)
    began = time.monotonic()
    assert handover.wait(work, 0.02) == (False, None)
    assert 0.015 <= time.monotonic() - began < 1.0
    assert not handover.deliver(work, "late")  # nobody waits: the runner tells the loop itself
    assert handover.wait(work, 0.0) == (False, None)


def test_work_not_expected_is_never_handed_over() -> None:
    handover = Handover()
    expected, other = object(), object()
    assert handover.wait(expected, 0.0) == (False, None)
    handover.expect(expected)
    assert not handover.deliver(other, "x")
    assert handover.wait(other, 0.0) == (False, None)
    assert handover.deliver(expected, "y")
    assert handover.wait(expected, 0.0) == (True, "y")
