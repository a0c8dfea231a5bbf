"""The console's engine: one asyncio loop in a daemon thread that owns the subscribers'
and floods' sockets, and the jobs it runs."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

TIMEOUT = 5.0  # seconds to wait for a cancelled job to end


class Job:
    """A task on the ``Engine``: ``finished`` is set once it ended and its cleanup ran."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.finished = threading.Event()


class Engine:
    """One asyncio loop in a daemon thread.  Subscribers and flooding run as its tasks: one
    thread owns their sockets, so flooding can write through the subscriber while it reads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zr-console-engine", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], cleanup: Callable[[], None] | None = None) -> Job:
        """Start ``coro`` on the loop; ``cleanup`` runs there after it ends, however it ends
        (even when cancelled before its first step)."""
        job = Job()

        def done(_task: asyncio.Task[Any]) -> None:
            try:
                if cleanup is not None:
                    cleanup()
            except Exception as err:
                print(f"cleanup failed: {err}", file=sys.stderr)
            finally:
                job.finished.set()

        def start() -> None:
            job.task = self.loop.create_task(coro)
            job.task.add_done_callback(done)

        self.loop.call_soon_threadsafe(start)
        return job

    def cancel(self, job: Job | None, timeout: float = TIMEOUT) -> None:
        """Cancel ``job`` and wait until it has ended and cleaned up."""
        if job is None:
            return

        def cancel() -> None:
            if job.task is not None:
                job.task.cancel()

        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(cancel)
        job.finished.wait(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
