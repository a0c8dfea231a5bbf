"""glibc malloc settings for a peer running in a process of its own (the ``zmq-raft`` commands).

Every frame a peer sends is a ZeroMQ message that the sending thread allocates and the
ZeroMQ I/O thread frees.  With glibc's defaults a 100-byte entry's message (a 144-byte chunk)
misses the fast bins, so each free from the I/O thread takes the arena lock and each
allocation sorts the unsorted bin again: a quarter of the serving thread went to
``malloc`` and its lock while streaming RequestEntries.  Two glibc tunables remove most of
it: ``glibc.malloc.mxfast=160`` (chunks up to 160 bytes use the lock-free fast bins) and
``glibc.malloc.tcache_count=256`` (one locked allocation refills a thread's cache with up to
256 chunks instead of 7).  Measured (bench/bench_entries.py): 1.4x the entries/s of a
RequestEntries stream; 1.02x the updates/s of a cluster.

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so the command re-executes
itself once (same pid, same arguments) with the variable set; settings the user already
gave are kept.  ``ZMQRAFT_MALLOC_TUNING=0`` turns this off.  An application embedding a
peer can set the same variable before it starts Python.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

from .switches import switched_off

#: the tunables the command sets when the environment does not name them
TUNABLES = {"glibc.malloc.mxfast": "160", "glibc.malloc.tcache_count": "256"}
#: set to 0, no, off or false to keep glibc's defaults
SWITCH = "ZMQRAFT_MALLOC_TUNING"
_MIN_GLIBC = (2, 26)  # the first with a thread cache and these tunables


def tuned_environment(env: Mapping[str, str], libc: tuple[str, str]) -> dict[str, str] | None:
    """The environment to re-execute with, or ``None`` when nothing is to change: not
    glibc (``libc`` as ``platform.libc_ver()`` gives it), turned off, or already tuned."""
    name, version = libc
    if name != "glibc" or switched_off(env, SWITCH):
        return None
    try:
        if tuple(int(part) for part in version.split(".")[:2]) < _MIN_GLIBC:
            return None
    except ValueError:
        return None
    given = env.get("GLIBC_TUNABLES", "")
    named = {item.partition("=")[0] for item in given.split(":") if item}
    missing = [f"{key}={value}" for key, value in TUNABLES.items() if key not in named]
    if not missing:
        return None
    tuned = dict(env)
    tuned["GLIBC_TUNABLES"] = ":".join(([given] if given else []) + missing)
    return tuned


def reexec_tuned() -> None:
    """Re-execute this command with the tunables (see the module doc); returns only when
    there is nothing to do.  Call it first thing, before any thread or socket exists."""
    argv = getattr(sys, "orig_argv", None)
    if not argv or not sys.executable:
        return
    env = tuned_environment(os.environ, platform.libc_ver())
    if env is not None:
        os.execve(sys.executable, argv, env)


__all__ = ["SWITCH", "TUNABLES", "reexec_tuned", "tuned_environment"]
