"""The operator tools (console scripts): zr-config, zr-monitor, zr-console, zr-log-compact,
zr-tool, zr-keys.  The terminal libraries are the ``tools`` extra (``zmq-raft-client[tools]``: rich,
prompt_toolkit): zr-monitor needs rich, zr-console on a terminal needs prompt_toolkit, and the
progress bars of zr-tool and zr-log-compact appear only with rich; everything else works
without them."""

from __future__ import annotations


def zr_monitor() -> int:
    """``zr-monitor``: a one-line hint instead of an ImportError without the extra."""
    from ._common import require_extra

    require_extra("rich", "zr-monitor")
    from .zr_monitor import main

    return main()
