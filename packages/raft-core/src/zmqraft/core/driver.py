"""The peer driver: the one object a runtime, and the simulator, drives to run a peer.

Theory of operation.  A peer is a ``PeerServer`` (the wire, the client RPC rules, the Raft
node) plus a state machine, listeners and an optional web monitor.  The driver owns all of
them and the order of a *round*; a runtime only moves bytes and runs blocking work where it
chooses, and the simulator drives this same object, so the ordering rules below are
simulated too.

Inputs (each takes the time as arguments: ``now`` monotonic seconds, ``wall`` epoch seconds):

* ``receive_router(routing_id, frames, now, wall)``: a message on the ROUTER socket;
* ``receive_peer(peer_id, frames, now, wall)``: a reply on the DEALER of ``peer_id``;
* ``handle_timer(now, wall)``: ``next_deadline()`` has passed;
* ``complete(work, outcome, now, wall)``: a ``Work`` handed out earlier has run.

After inputs, ``round(now, wall)`` ends the batch (a leader sends one AppendEntries per
follower for all the updates it brought) and returns an ``Outputs`` the runtime acts on in
its order:

1. ``work``: blocking work to start.  Storage work (``Lane.STORAGE``: writes and fsyncs, the
   compaction poll) runs one item at a time, in the order handed out; apply work
   (``Lane.APPLY``: a state machine whose ``blocking`` is true, and every machine's
   ``flush`` about every ``flush_interval`` seconds while it applies) likewise, on its own.
   A state machine that does not block is applied inside the round.  ``work.run()`` never
   raises; its outcome goes back through ``complete``;
2. ``connect``: a new configuration; the runtime connects and closes DEALERs to match it
   *before* sending, so the first frame to a new peer has a socket to leave by;
3. ``router``, ``peers``, ``pub``: frames per socket kind, to send without blocking.

Events (role and configuration changes, commits of joint configurations, errors, custom
client requests) are handled inside the round: logged, told to the state machine, to the
user's listeners and to the web monitor's streams; user code is called *guarded* (an
exception is logged, never fatal).  They are also returned in ``Outputs.events`` for those
who watch the peer from outside (the simulator's checker).

A failed storage job or state machine is fatal to the peer: ``complete`` logs it and sets
``failure``; the runtime then closes.  Nothing here reads a clock, sleeps or does I/O
itself: ``Work.run`` does the storage and apply I/O, on the caller's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .builder import AssembledPeer
from .cluster import ClusterConfig
from .jobs import ApplyJob, Job
from .raft.node import ConfigChanged, ConfigCommitted, RaftError, Removed, Role, StateChanged
from .server import ClientRequest, PeerServer
from .statemachine import StateMachine, dispatch_client_request, run_apply_job
from .storage.base import LogStorage, SnapshotMeta, StateStorage, StorageError
from .storage.executor import StorageExecutor
from .webmonitor import WebMonitor, web_monitor

#: the listener names a peer calls (``options["listeners"]``)
LISTENERS = ("state", "config", "error", "close")

SLOW_STORAGE = 0.15  # seconds from hand-out to completion: acknowledgements near election timeouts
#: the longest a leader's loop waits for its own write (``Work.wait``); a write that took
#: longer is not waited for, nor the next one, until a write is quick again
LEADER_WRITE_WAIT = 0.005

log = logging.getLogger("zmqraft.driver")


class Lane(Enum):
    """Where a ``Work`` runs: each lane runs one item at a time, in the order handed out."""

    STORAGE = "storage"
    APPLY = "apply"


class InstallPoll:
    """Look for a compaction snapshot at the install path (``data.compact.watch``)."""

    def __str__(self) -> str:
        return "compaction poll"


class Flush:
    """Make the state machine's applied index durable (``StateMachine.flush``)."""

    def __str__(self) -> str:
        return "state machine flush"


@dataclass(frozen=True, slots=True)
class Failure:
    """The outcome of a ``Work`` whose ``run`` raised."""

    error: Exception


@dataclass(eq=False, slots=True)
class Work:
    """Blocking work for the runtime: call ``run()`` in its lane (a worker thread, a
    threadpool, or inline: the runtime's choice), then ``driver.complete(self, outcome, ...)``."""

    lane: Lane
    item: Job | ApplyJob | InstallPoll | Flush
    handed_out: float  # the round's ``now``: a slow completion is warned about
    _run: Callable[[], Any]
    #: to be run at once, on the event loop, and completed in the same pump: storage work of
    #: a peer that is not the leader (it sends no heartbeats, so a slow write delays only its
    #: own answers; tests/faults/test_slow_disk.py), while no other storage work is
    #: outstanding.  A follower's acknowledgement then leaves without a hand-off to a thread.
    inline: bool = False
    #: seconds the event loop may block waiting for this work, which still runs in its lane
    #: (0: do not wait): the leader's own write while its writes have been quick.  Waiting
    #: for a quick fdatasync instead of going back to the loop lets the requests and
    #: acknowledgements that arrive meanwhile form one larger batch, and spares the thread
    #: hand-offs of its completion (1.16x updates/s, 1.48x less leader CPU, measured); the
    #: bound, and the next timer (the runtime waits no longer than ``next_deadline()``),
    #: keep a slow disk from holding up heartbeats.
    wait: float = 0.0

    def run(self) -> Any:
        """Do the work; never raises (an exception becomes a ``Failure`` outcome)."""
        try:
            return self._run()
        except Exception as exc:
            return Failure(exc)


@dataclass(slots=True)
class Outputs:
    """What one round hands the runtime, in the order to act on it (see the module doc)."""

    work: list[Work] = field(default_factory=list)
    connect: ClusterConfig | None = None
    router: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    peers: list[tuple[str, list[bytes]]] = field(default_factory=list)
    pub: list[list[bytes]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    @property
    def frames(self) -> int:
        """How many messages leave."""
        return len(self.router) + len(self.peers) + len(self.pub)


Watcher = Callable[[StateChanged | ConfigChanged], None]


class PeerDriver:
    """One peer: its ``PeerServer``, state machine, listeners and web monitor, and the order
    of its rounds.  Build it with ``PeerDriver.of(assembled_peer)`` or from its parts."""

    def __init__(
        self,
        server: PeerServer,
        state_machine: StateMachine,
        log_storage: LogStorage,
        state_storage: StateStorage,
        *,
        listeners: Mapping[str, Callable[..., Any] | None] | None = None,
        monitor: WebMonitor | None = None,
        install_poll_interval: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.server = server
        self.state_machine = state_machine
        self.log_storage = log_storage
        self.listeners = dict(listeners or {})
        self.monitor = monitor
        self.watchers: list[Watcher] = []  # the web monitor's event streams
        self.failure: Exception | None = None
        self._log = logger or log
        #: offer a non-leader's storage work for the loop itself (``Work.inline``): for a
        #: peer in a process of its own, not beside other work on a shared event loop
        self.inline_storage = False
        self._storage_out = 0  # storage work handed out, not yet complete
        self._quick_writes = True  # the last storage job took at most LEADER_WRITE_WAIT
        self._executor = StorageExecutor(log_storage, state_storage)
        self._poll_interval = install_poll_interval
        self._poll_due: float | None = None  # set at the first round when watching
        self._poll_out = install_poll_interval is None  # True: no poll to hand out
        self._flushed = server.node.last_applied  # the applied index the last flush made durable
        self._flush_due: float | None = None  # when a flush may go out (None: at the next round)
        self._flush_out = state_machine.flush_interval is None  # True: none to hand out
        self.metrics = server.metrics
        self._snapshot_seen = server.node.log.snapshot.index  # a new one goes on the timeline

    @classmethod
    def of(
        cls,
        peer: AssembledPeer,
        *,
        listeners: Mapping[str, Callable[..., Any] | None] | None = None,
        logger: logging.Logger | None = None,
        inline_storage: bool = False,
    ) -> PeerDriver:
        """The driver of an assembled peer: its listeners (``options["listeners"]`` unless
        given), its web monitor when ``webmonitor.enable``, the compaction poll when
        ``data.compact.watch``; ``inline_storage`` as the attribute."""
        options = peer.options
        watch = peer.install_path is not None
        interval = int(options["data"]["compact"]["watchInterval"]) / 1000.0 if watch else None
        driver = cls(
            peer.server,
            peer.state_machine,
            peer.log,
            peer.persistence,
            listeners=listeners if listeners is not None else options.get("listeners") or {},
            monitor=web_monitor(peer.server, options),
            install_poll_interval=interval,
            logger=logger,
        )
        driver.inline_storage = inline_storage
        return driver

    @property
    def id(self) -> str:
        return self.server.id

    # ================================================================ inputs

    def receive_router(self, routing_id: bytes, frames: list[bytes], now: float, wall: float) -> None:
        self.server.receive_router(routing_id, frames, now, wall)

    def receive_router_batch(self, messages: list[list[bytes]], now: float, wall: float) -> None:
        """Messages drained from the ROUTER, each with its routing id first."""
        self.server.receive_router_batch(messages, now, wall)

    def receive_peer(self, peer_id: str, frames: list[bytes], now: float, wall: float) -> None:
        self.server.receive_peer(peer_id, frames, now, wall)

    def broadcast_subscribed(self, present: bool, now: float) -> None:
        """The runtime's broadcast socket gained its first subscriber or lost its last: the
        leader publishes only while someone listens."""
        self.server.broadcast_subscribed(present, now)

    def handle_timer(self, now: float, wall: float) -> None:
        self.server.handle_timer(now, wall)

    def snapshot_installed(self, now: float) -> None:
        """A compaction snapshot was installed into the log behind the core's back."""
        self.server.snapshot_installed(now)

    def next_deadline(self) -> float | None:
        deadline = self.server.get_timer()
        if self._poll_due is not None and not self._poll_out:
            deadline = self._poll_due if deadline is None else min(deadline, self._poll_due)
        if self._flush_due is not None and not self._flush_out and self._unflushed():
            deadline = self._flush_due if deadline is None else min(deadline, self._flush_due)
        return deadline

    def complete(self, work: Work, outcome: Any, now: float, wall: float) -> None:
        """``work`` has run (``outcome``: what ``work.run()`` returned)."""
        item = work.item
        if work.lane is Lane.STORAGE:
            self._storage_out -= 1
        if isinstance(outcome, Failure):
            what = "the state machine" if work.lane is Lane.APPLY else "storage"
            if isinstance(item, InstallPoll):
                self._polled(outcome.error, now)
                return
            if isinstance(outcome.error, StorageError):  # names file and offset: one line
                self._log.error("%s: %s failed: %s", self.id, what, outcome.error)
                self._log.debug("%s: %s failed", self.id, what, exc_info=outcome.error)
            else:
                self._log.error("%s: %s failed", self.id, what, exc_info=outcome.error)
            if self.failure is None:
                self.failure = outcome.error
            return
        if isinstance(item, InstallPoll):
            self._polled(outcome, now)
            return
        if isinstance(item, Flush):
            self._flush_out = False
            self._flush_due = now + (self.state_machine.flush_interval or 0.0)
            return
        if work.lane is Lane.STORAGE:
            took = now - work.handed_out
            self._quick_writes = took <= LEADER_WRITE_WAIT
            self.metrics.storage_seconds.observe(took)
            if took > SLOW_STORAGE:
                self._log.warning("%s: a storage job took %.0f ms (slow disk?)", self.id, took * 1000)
        self.server.complete_job(item, now, wall, outcome if isinstance(item, ApplyJob) else None)

    # ================================================================ the round

    def round(self, now: float, wall: float) -> Outputs:
        """Work, then events, then frames (see the module doc)."""
        out = Outputs()
        server = self.server
        machine = self.state_machine
        server.end_batch(now)
        while (job := server.next_job()) is not None:
            if isinstance(job, Job):
                alone = self.inline_storage and not self._storage_out
                leading = server.node.role is Role.LEADER
                wait = LEADER_WRITE_WAIT if alone and leading and self._quick_writes else 0.0
                self._storage_out += 1
                if job.log is not None and job.log.entries:
                    self.metrics.append_batch.observe(len(job.log.entries))
                out.work.append(Work(Lane.STORAGE, job, now, self._storage(job), alone and not leading, wait))
            elif machine.blocking:
                out.work.append(Work(Lane.APPLY, job, now, self._apply(job)))
            else:
                applied = Work(Lane.APPLY, job, now, self._apply(job))
                self.complete(applied, applied.run(), now, wall)
        if not self._flush_out and self._unflushed():
            if self._flush_due is None:
                self._flush_due = now + (machine.flush_interval or 0.0)
            elif now >= self._flush_due:
                self._flush_out = True
                self._flushed = server.node.last_applied
                out.work.append(Work(Lane.APPLY, Flush(), now, machine.flush))
        if not self._poll_out:
            if self._poll_due is None:
                assert self._poll_interval is not None
                self._poll_due = now + self._poll_interval
            elif now >= self._poll_due:
                self._poll_out = True
                self._storage_out += 1
                out.work.append(Work(Lane.STORAGE, InstallPoll(), now, self._poll))
        while (event := server.next_event()) is not None:
            out.events.append(event)
            self._handle(event, out, wall)
        node = server.node
        self.metrics.sample_commit(now, wall, node.commit_index)
        if node.log.snapshot.index != self._snapshot_seen:
            snapshot = node.log.snapshot
            self._snapshot_seen = snapshot.index
            self.metrics.event(
                wall, "snapshot", f"snapshot at index {snapshot.index} ({snapshot.size} bytes)"
            )
        out.router, out.peers, out.pub = server.take_frames()
        return out

    def loop_round(self, seconds: float) -> None:
        """The runtime's event loop spent ``seconds`` on one wake-up (a metric)."""
        self.metrics.loop_round.observe(seconds)

    def close(self) -> None:
        """The peer closed: tell the ``close`` listener."""
        self.call("close")

    # ================================================================ work

    def _unflushed(self) -> bool:
        return self.server.node.last_applied != self._flushed

    def _storage(self, job: Job) -> Callable[[], None]:
        return lambda: self._executor.run(job)

    def _apply(self, job: ApplyJob) -> Callable[[], int]:
        return lambda: run_apply_job(self.state_machine, job, self.log_storage)

    def _poll(self) -> SnapshotMeta | None:
        poll: Callable[[], SnapshotMeta | None] = getattr(self.log_storage, "poll_install_path")  # noqa: B009
        return poll()

    def _polled(self, result: SnapshotMeta | Exception | None, now: float) -> None:
        """A refused compaction snapshot stops the watching; an installed one is told to the
        core, which re-reads the log's first index."""
        self._poll_out = False
        if isinstance(result, Exception):
            self._log.error("%s: compaction snapshot refused, no longer watching: %s", self.id, result)
            self._poll_out = True  # for good
            return
        if result is not None:
            self._log.info("%s: compaction snapshot installed: %s", self.id, result)
            self.snapshot_installed(now)
        assert self._poll_interval is not None
        self._poll_due = now + self._poll_interval

    # ================================================================ events

    def _handle(self, event: Any, out: Outputs, wall: float) -> None:
        if isinstance(event, StateChanged):
            self._log.info(
                "%s: %s term=%d leader=%s", self.id, event.role.value, event.term, event.leader_id or "-"
            )
            self._count_state(event, wall)
            self.guarded("on_raft_state", self.state_machine.on_raft_state, event.role, event.term)
            self.call("state", event.role, event.term)
            self._notify(event)
        elif isinstance(event, ConfigChanged):
            self._log.info("%s: configuration %s", self.id, event.config)
            self.metrics.event(wall, "config", _config_text(event.config))
            out.connect = event.config
            if self.monitor is not None:
                self.monitor.config_changed(event.config)
            self.call("config", event.config)
            self._notify(event)
        elif isinstance(event, ClientRequest):
            if self.monitor is not None and self.monitor.answer(event):
                return
            machine = self.state_machine
            if not self.guarded("on_client_request", dispatch_client_request, machine, self.server, event):
                self._log.debug("%s: no handler for client request type %r", self.id, event.type[:16])
        elif isinstance(event, ConfigCommitted):
            self._log.info("%s: joint configuration committed at %d", self.id, event.joint_index)
            self.metrics.event(wall, "config", f"joint configuration committed at index {event.joint_index}")
        elif isinstance(event, Removed):
            self._log.warning(
                "%s: removed from the cluster (the change at %d without this peer is committed):"
                " passive from now on; it may be shut down",
                self.id,
                event.joint_index,
            )
        elif isinstance(event, RaftError):
            self._log.error("%s: raft error: %s", self.id, event.message)
            self.call("error", event)

    def _count_state(self, event: StateChanged, wall: float) -> None:
        """Elections, leader changes and the timeline, from the role changes."""
        metrics = self.metrics
        role = event.role
        if role is Role.CANDIDATE:
            metrics.elections_started += 1
            metrics.event(wall, "election", f"{self.id} campaigns in term {event.term}")
        elif role is Role.LEADER:
            metrics.elections_won += 1
        elif role is not metrics.role_seen:
            metrics.event(wall, "role", f"{self.id} is {role.value.lower()} in term {event.term}")
        metrics.role_seen = role
        leader = event.leader_id
        if leader is not None and leader != metrics.leader_seen:
            if metrics.leader_seen is not None:
                metrics.leader_changes += 1
            metrics.leader_seen = leader
            metrics.event(wall, "leader", f"{leader} leads term {event.term}")

    def _notify(self, event: StateChanged | ConfigChanged) -> None:
        for watcher in list(self.watchers):
            self.guarded("a web monitor stream", watcher, event)

    def call(self, name: str, *args: Any) -> None:
        """Call the user's listener ``name``, if any (guarded)."""
        listener = self.listeners.get(name)
        if listener is not None:
            self.guarded(f"the {name} listener", listener, *args)

    def guarded(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """User code: a failure is logged, never fatal to the peer."""
        try:
            return call(*args)
        except Exception:
            self._log.exception("%s: %s failed", self.id, what)
            return None


def _config_text(config: ClusterConfig) -> str:
    old = ", ".join(peer_id for peer_id, _ in config.old)
    if config.is_joint:
        new = ", ".join(peer_id for peer_id, _ in config.new or ())
        return f"joint configuration: old [{old}], new [{new}]"
    return f"configuration [{old}]"


__all__ = ["LISTENERS", "Failure", "Flush", "InstallPoll", "Lane", "Outputs", "PeerDriver", "Work"]
