"""One-line errors for the command-line programs (``zmq-raft``, ``zmq-raft-gevent`` and every
``zr-*`` tool): an ordinary mistake (a missing config file, a YAML syntax error, an unknown
peer id, a port in use, a data path that is a file or read-only, a timeout) is reported as
one line saying what failed, where, and what to do, with a non-zero exit status; the
traceback only with ``-v``/``--debug``.  Every program reports through ``report`` so the
wording is the same everywhere.
"""

from __future__ import annotations

import errno
import sys
import traceback

from .client.errors import ClientError
from .cluster import ConfigError
from .config import OptionsError
from .curve_keys import CurveKeyError
from .storage.base import StorageError


class CommandError(Exception):
    """An ordinary failure whose message is already the one line to print; ``status`` is the
    exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _os_error(err: OSError) -> str:
    where = err.filename if err.filename is not None else None
    reason = err.strerror or str(err)
    if err.errno == errno.EADDRINUSE:
        return (
            f"address already in use: {where or reason}: is another peer or program "
            "listening there? stop it or give another port"
        )
    if err.errno == errno.EADDRNOTAVAIL:
        return f"can not bind {where or reason}: no such local address (use one of this host's)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied: {where or reason} (a read-only or foreign path? choose a writable one)"
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        return f"not a directory: {where or reason} (a file is in the way: give a directory path)"
    if err.errno == errno.ENOENT:
        return f"no such file or directory: {where or reason}"
    return f"{reason}: {where}" if where else reason


def one_line(err: BaseException) -> str:
    """What ``err`` means to the person at the terminal, in one line."""
    plain = CommandError | OptionsError | ConfigError | StorageError | ClientError | CurveKeyError
    if isinstance(err, plain):
        text = str(err)  # the client's timeouts name the peers tried and the likely causes
    elif isinstance(err, TimeoutError):
        text = (f"timed out: {err}" if str(err) else "timed out") + (
            " (is the cluster running at that address, and is the secret right?)"
        )
    elif isinstance(err, OSError):
        text = _os_error(err)
    else:
        text = f"{type(err).__name__}: {err}"
    return " ".join(text.split())  # one line, whatever the message held


def exit_status(err: BaseException) -> int:
    return err.status if isinstance(err, CommandError) else 1


def report(prog: str, err: BaseException, debug: bool = False) -> int:
    """Print ``prog: <one line>`` on stderr (after the traceback when ``debug``); returns the
    exit status for ``err``."""
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    print(f"{prog}: {one_line(err)}", file=sys.stderr, flush=True)
    return exit_status(err)


__all__ = ["CommandError", "exit_status", "one_line", "report"]
