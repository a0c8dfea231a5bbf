"""What every runtime does with a ``PeerServer``'s jobs and events, whatever it waits with.

The asyncio and gevent runtimes differ only in how they wait and where blocking work runs;
the rest is the same and lives here, so a fix lands in both at once: storage jobs go to the
runtime's storage worker, apply jobs to its state-machine worker (or are applied at once for
a state machine that does not block); events are logged, told to the state machine and the
user's listeners, and a new configuration has the runtime connect its DEALERs before any
frame to a new peer leaves (jobs, then events; the runtime sends the frames last).

User code (listeners, state machine callbacks) is called *guarded*: an exception is logged
and never takes the peer down.  With a web monitor, ``W`` requests are answered here and
``watchers`` (the runtime's event streams) hear of every role and configuration change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .cluster import ClusterConfig
from .jobs import ApplyJob, Job
from .raft.node import ConfigChanged, ConfigCommitted, RaftError, StateChanged
from .server import ClientRequest, PeerServer
from .statemachine import StateMachine, dispatch_client_request, run_apply_job
from .storage.base import LogStorage
from .webmonitor import WebMonitor

#: the listener names a runtime calls (``options["listeners"]`` or the ``listeners`` argument)
LISTENERS = ("state", "config", "error", "close")


class PeerEvents:
    """Routes the jobs and handles the events of one peer; ``connect_peers(config)`` is the
    runtime's part."""

    def __init__(
        self,
        server: PeerServer,
        state_machine: StateMachine,
        log_storage: LogStorage,
        listeners: Mapping[str, Callable[..., Any] | None],
        connect_peers: Callable[[ClusterConfig], None],
        log: logging.Logger,
        monitor: WebMonitor | None = None,
    ) -> None:
        self.server = server
        self.state_machine = state_machine
        self.log_storage = log_storage
        self.listeners = dict(listeners)
        self.connect_peers = connect_peers
        self.log = log
        self.monitor = monitor
        self.watchers: list[Callable[[StateChanged | ConfigChanged], None]] = []

    @property
    def id(self) -> str:
        return self.server.id

    def drain(
        self, now: float, wall: float, store: Callable[[Job], None], apply: Callable[[ApplyJob], None]
    ) -> None:
        """Jobs, then events.  ``store``/``apply`` queue a job for the runtime's storage /
        state-machine worker (``apply`` only sees jobs of a blocking state machine)."""
        server = self.server
        machine = self.state_machine
        while (job := server.next_job()) is not None:
            if isinstance(job, Job):
                store(job)
            elif machine.blocking:
                apply(job)
            else:
                server.complete_job(job, now, wall, run_apply_job(machine, job, self.log_storage))
        while (event := server.next_event()) is not None:
            self.handle(event)

    def handle(self, event: Any) -> None:
        log = self.log
        if isinstance(event, StateChanged):
            log.info(
                "%s: %s term=%d leader=%s", self.id, event.role.value, event.term, event.leader_id or "-"
            )
            self.guarded("on_raft_state", self.state_machine.on_raft_state, event.role, event.term)
            self.call("state", event.role, event.term)
            self._notify(event)
        elif isinstance(event, ConfigChanged):
            log.info("%s: configuration %s", self.id, event.config)
            self.connect_peers(event.config)
            if self.monitor is not None:
                self.monitor.config_changed(event.config)
            self.call("config", event.config)
            self._notify(event)
        elif isinstance(event, ClientRequest):
            if self.monitor is not None and self.monitor.answer(event):
                return
            machine = self.state_machine
            if not self.guarded("on_client_request", dispatch_client_request, machine, self.server, event):
                log.debug("%s: no handler for client request type %r", self.id, event.type[:16])
        elif isinstance(event, ConfigCommitted):
            log.info("%s: joint configuration committed at %d", self.id, event.joint_index)
        elif isinstance(event, RaftError):
            log.error("%s: raft error: %s", self.id, event.message)
            self.call("error", event)

    def _notify(self, event: StateChanged | ConfigChanged) -> None:
        for watcher in list(self.watchers):
            self.guarded("a web monitor stream", watcher, event)

    def call(self, name: str, *args: Any) -> None:
        """Call the user's listener ``name``, if any."""
        listener = self.listeners.get(name)
        if listener is not None:
            self.guarded(f"the {name} listener", listener, *args)

    def guarded(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """User code called from the pump: a failure is logged, never fatal to the peer."""
        try:
            return call(*args)
        except Exception:
            self.log.exception("%s: %s failed", self.id, what)
            return None


__all__ = ["LISTENERS", "PeerEvents"]
