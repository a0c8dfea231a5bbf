"""One adapter per server runtime for the shared peer suite (``test_peer_runtime.py``).

The suite is written once against ``Runtime``; the ``flavour`` fixture runs every test with
each runtime (pyzmq's pattern: one API, several concurrency flavours, the same tests; the
name ``runtime`` is the integration harness's fixture, global when pytest's rootdir is a
package).  The adapters are the only code here that knows how a runtime waits:

* asyncio: the peers run on an event loop in a background thread (anyio's blocking portal);
  ``running`` is the runtime's own ``async with raft:`` entered on that loop, ``start`` is
  ``await tg.start(raft.serve)``, and ``close()``/``wait_closed()`` go through the portal.
  The test's ZeroMQ sockets are plain blocking ones, in the test's thread;
* gevent: the peers run in greenlets of the test's own hub; ``running`` is ``with raft:``,
  ``start`` is ``raft.start()``, and the test's sockets are ``zmq.green`` ones, so waiting for
  an answer lets the peers run (no monkey-patching).

Every peer an adapter started is closed at teardown (a safety net for a failing test; the
tests close their peers themselves) and every client and socket it made is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType
from typing import Any

import anyio
import anyio.from_thread
import gevent
import pytest
import zmq
import zmq.green
import zmqraft.asyncio
import zmqraft.gevent
from zmqraft.client import Client

CLOSE_TIMEOUT = 10.0  # a close waits for the job in flight and the sockets' 2 s LINGER


class Runtime:
    """How a test drives one server runtime.  Subclasses say how it waits."""

    name: str
    module: ModuleType  # ``build`` and ``ZmqRaft``

    def __init__(self, context: zmq.Context[Any]) -> None:
        self.context = context  # the test's sockets: waiting on them lets the peers run
        self._started: list[Any] = []
        self._built: list[Any] = []
        self._clients: list[Client] = []
        self._sockets: list[zmq.Socket[Any]] = []

    # ---- how the runtime waits

    def _running(self, raft: Any) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _start(self, raft: Any) -> None:
        raise NotImplementedError

    def close(self, raft: Any, timeout: float = CLOSE_TIMEOUT) -> None:
        """``raft.close()``, then wait until it is closed: an assertion fails after ``timeout``."""
        raise NotImplementedError

    def wait_closed(self, raft: Any, timeout: float) -> bool:
        """``raft.wait_closed()`` for at most ``timeout`` seconds: False if it did not return."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Pass time while the peers run."""
        raise NotImplementedError

    # ---- the same for every runtime

    def build(self, options: dict[str, Any], **kwargs: Any) -> Any:
        raft = self.module.build(options, **kwargs)
        self._built.append(raft)
        return raft

    @contextmanager
    def running(self, raft: Any) -> Iterator[Any]:
        """The runtime's own context manager: started on entry, closed gracefully on exit."""
        self._started.append(raft)
        with self._running(raft) as entered:
            yield entered

    def start(self, raft: Any) -> None:
        """Run the peer in the background; a start failure raises here."""
        self._started.append(raft)
        self._start(raft)

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``check`` with a deadline while the peers run."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.sleep(0.01)

    def client(self, url: str) -> Client:
        """A ``zmqraft.client.Client`` of the single peer "1" at ``url``."""
        client = Client([url], peers=[["1", url]], rpc_timeout=5.0, context=self.context)
        self._clients.append(client)
        return client

    def dealer(self, url: str) -> zmq.Socket[Any]:
        """A raw DEALER connected to ``url``, to send requests nobody waits for."""
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(url)
        self._sockets.append(sock)
        return sock

    def teardown(self) -> None:
        for client in self._clients:
            client.close()
        for sock in self._sockets:
            sock.close(0)
        for raft in self._built:
            if raft not in self._started:  # built, never started: close() releases its files
                raft.close()
        for raft in self._started:
            self.close(raft)
        self.context.term()


class AsyncioRuntime(Runtime):
    name = "asyncio"
    module = zmqraft.asyncio

    def __init__(self, portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__(zmq.Context())
        self.portal = portal

    def _running(self, raft: Any) -> AbstractContextManager[Any]:
        return self.portal.wrap_async_context_manager(raft)

    def _start(self, raft: Any) -> None:
        self.portal.start_task(raft.serve)

    def close(self, raft: Any, timeout: float = CLOSE_TIMEOUT) -> None:
        self.portal.call(raft.close)
        assert self.wait_closed(raft, timeout), f"peer {raft.id} did not close"

    def wait_closed(self, raft: Any, timeout: float) -> bool:
        async def wait() -> bool:
            with anyio.move_on_after(timeout):
                await raft.wait_closed()
                return True
            return False

        return self.portal.call(wait)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # the peers run in the portal's thread meanwhile


class GeventRuntime(Runtime):
    name = "gevent"
    module = zmqraft.gevent

    def __init__(self) -> None:
        super().__init__(zmq.green.Context())

    def _running(self, raft: Any) -> AbstractContextManager[Any]:
        return raft

    def _start(self, raft: Any) -> None:
        raft.start()

    def close(self, raft: Any, timeout: float = CLOSE_TIMEOUT) -> None:
        raft.close()  # waits until closed (from any greenlet but the peer's own)
        assert raft.wait_closed(timeout), f"peer {raft.id} did not close"

    def wait_closed(self, raft: Any, timeout: float) -> bool:
        return bool(raft.wait_closed(timeout))

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)


@contextmanager
def adapter(name: str) -> Iterator[Runtime]:
    if name == "asyncio":
        with anyio.from_thread.start_blocking_portal("asyncio") as portal:
            yield AsyncioRuntime(portal)
    else:
        yield GeventRuntime()


@pytest.fixture(params=["asyncio", "gevent"])
def flavour(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """Each test of the suite, once per server runtime."""
    with adapter(request.param) as runtime:
        try:
            yield runtime
        finally:
            runtime.teardown()
