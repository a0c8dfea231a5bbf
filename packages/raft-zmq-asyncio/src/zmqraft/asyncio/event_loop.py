"""The event loop the ``zmq-raft`` command runs a peer on: uvloop when it is installed (it is
a dependency of this package on POSIX), asyncio's own loop otherwise or with
``ZMQRAFT_UVLOOP=0``.

A peer wakes its loop for every message that arrives when it is not already busy: at one
update in flight that is a few wake-ups per update on every peer, each a pass of the loop's
``select`` and callback machinery.  uvloop runs that machinery in libuv and Cython instead of
Python.  Measured (interleaved rounds, 3 peers, bench/bench_cluster.py's client): 1.05x the
updates/s at 64 in flight, 1.04x lower p50 at one in flight, 3-8% less CPU per commit.
Nothing else changes: the peer's code is the same on either loop (``ZmqRaft`` only uses
``add_reader``, ``call_later`` and ``call_soon_threadsafe``).

An application that embeds a peer (``ZmqRaft`` in its own task group) keeps the loop it runs
on; it can choose uvloop the same way: ``anyio.run(main, backend_options={"use_uvloop": True})``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
from zmqraft.core.switches import switched_off

#: set to 0, no, off or false to run on asyncio's own loop
SWITCH = "ZMQRAFT_UVLOOP"

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def use_uvloop(env: Mapping[str, str], installed: bool) -> bool:
    """Run on uvloop?  Yes when it is ``installed`` and ``env`` does not turn it off."""
    return installed and not switched_off(env, SWITCH)


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def run(func: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
    """``anyio.run(func, *args)`` on the loop ``use_uvloop`` picks."""
    uvloop = use_uvloop(os.environ, uvloop_installed())
    return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": uvloop})


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: what the running loop is (the command logs it with -v)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.partition(".")[0] == "uvloop" else "asyncio"


__all__ = ["SWITCH", "run", "running_loop_name", "use_uvloop", "uvloop_installed"]
