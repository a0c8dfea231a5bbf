"""The peer endpoint: frames in; frames, jobs and events out.  Runtimes do not touch it
directly: the peer driver (``zmqraft.core.driver``) owns it and the order of a round.

After aioquic's connection object: every inbound ZeroMQ message goes to ``receive_router``
(the ROUTER socket: clients and other peers' requests) or ``receive_peer`` (replies on the
DEALER connected to one peer); ``handle_timer`` runs when ``get_timer()`` has passed; then
``next_job()`` gives storage work (``Job``) and state-machine work (``ApplyJob``), each
acknowledged with ``complete_job``; ``next_event()`` role, configuration and custom client
request events; ``take_frames()`` the frames per socket kind.

This module owns what sits between the wire and the Raft node (spec/protocol.md §7–§9):
the cluster ident check, decoding (a malformed message is counted and dropped, never
fatal), debouncing of AppendEntries/InstallSnapshot and the client RPCs with the request-id
idempotency rules and ConfigUpdate.  The RequestEntries pipelines
(``entries_pipelines``) and the broadcast state machine's publishing (``broadcast``) are
modules of their own.
"""

from __future__ import annotations

import base64
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .broadcast import BroadcastPublisher
from .catchup import CatchUp
from .client_writes import ClientWrites
from .cluster import ClusterConfig
from .entries_pipelines import EntriesPipelines
from .jobs import ApplyJob, Job
from .metrics import PeerMetrics
from .protocol import messages as m
from .protocol.errors import ProtocolError
from .protocol.reqid import RequestIdGenerator, default_generator
from .raft import inputs
from .raft.node import (
    ConfigChanged,
    ConfigCommitted,
    HardState,
    Outgoing,
    RaftNode,
    Role,
    StateChanged,
)
from .raft.options import RaftOptions
from .storage.base import LogStorage

log = logging.getLogger("zmqraft.server")

UNDEBOUNCED = {m.REQUEST_VOTE, m.PRE_VOTE}
STREAM_SWEEP_INTERVAL = 2.0

PeerRequest: TypeAlias = m.RequestVote | m.AppendEntries | m.InstallSnapshot | m.PreVote
PeerReply: TypeAlias = m.RequestVoteReply | m.AppendEntriesReply | m.InstallSnapshotReply | m.PreVoteReply
ReplyDecoder: TypeAlias = Callable[[m.Frames], PeerReply]


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A request the state machine answers (ClientDispatch, RequestBroadcastStateUrl, 'W').
    Reply with ``server.reply(request.routing_id, [request.request_id, *frames])``."""

    routing_id: bytes
    request_id: bytes
    type: bytes
    args: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a peer RPC's reply goes, and the debounce slot it fills."""

    routing_id: bytes
    sender: str
    msg_id: int
    debounced: bool


@dataclass(slots=True)
class _Debounce:
    routing_id: bytes
    msg_id: int
    reply: list[bytes] | None = None


@dataclass(slots=True)
class Stats:
    dropped_malformed: int = 0
    dropped_ident: int = 0
    dropped_unknown_peer: int = 0
    debounced: int = 0


class PeerServer:
    def __init__(
        self,
        peer_id: str,
        storage: LogStorage,
        hard_state: HardState,
        *,
        now: float,
        wall: float,
        options: RaftOptions | None = None,
        rng: random.Random | None = None,
        secret: bytes = b"",
        last_applied: int = 0,
        broadcast: bool = True,
        broadcast_heartbeat_interval: float = 0.5,
        request_id_generator: RequestIdGenerator | None = None,
    ) -> None:
        self.options = options or RaftOptions()
        self.ident = secret
        self.stats = Stats()
        self.metrics = PeerMetrics()
        wall_ms = int(wall * 1000)
        ttl_ms = None if self.options.request_id_ttl is None else int(self.options.request_id_ttl * 1000)
        rids = storage.request_ids(wall_ms, ttl_ms, self.options.request_id_cache_max)
        if request_id_generator is None and rng is None:
            # the process-wide counter: a client in this process never draws the same id
            request_id_generator = default_generator()
        self.node = RaftNode(
            peer_id,
            storage,
            hard_state,
            self.options,
            rng or random.Random(),
            now,
            last_applied,
            rids,
            request_id_generator,
            wall_ms,
        )
        self.wall_ms = wall_ms  # of the input being handled: passed on to the node
        # frames per socket kind: (routing id, frames) on the ROUTER, (peer id, frames) on
        # that peer's DEALER, broadcasts on the PUB
        self._router_out: list[tuple[bytes, list[bytes]]] = []
        self._peer_out: list[tuple[str, list[bytes]]] = []
        self._pub_out: list[list[bytes]] = []
        self._events: deque[Any] = deque()
        self._debounce: dict[str, _Debounce] = {}
        self._sent_kinds: dict[str, OrderedDict[int, ReplyDecoder]] = {}
        self._writes = ClientWrites(self.node, self.options, self.reply, self.metrics)
        self._streams = EntriesPipelines(self.options, self.reply)
        self._next_stream_sweep = now + STREAM_SWEEP_INTERVAL
        self._next_rid_sweep = now + self.options.request_id_cache_sweep_interval
        self._broadcast = BroadcastPublisher(
            self.ident, broadcast_heartbeat_interval, self._queue_broadcast, enabled=broadcast
        )
        self._apply_job: ApplyJob | None = None
        self._catch_up: CatchUp | None = None
        if CatchUp.wanted(self.node):
            self._catch_up = CatchUp(
                [pid for pid, _ in self.node.config.others(self.id)], self.node.commit_index
            )
            self._send_peer(*self._catch_up.start(now))
        self._flush(now)

    # ================================================================ runtime interface

    @property
    def id(self) -> str:
        return self.node.id

    def refuse_config(self, check: Callable[[list[str]], str | None]) -> None:
        """Have the leader refuse a ConfigUpdate whose new peer ids ``check`` finds a reason
        against (status ERROR with that reason; CurveZMQ: a peer without a public key)."""
        self._writes.refuse_config = check

    def receive_router(self, routing_id: bytes, frames: list[bytes], now: float, wall: float) -> None:
        """A message that arrived on the ROUTER socket (routing id split off)."""
        self.receive_router_batch([[routing_id, *frames]], now, wall)

    def broadcast_subscribed(self, present: bool, now: float) -> None:
        """Anyone subscribed to the broadcasts, or nobody any more (see ``broadcast``)."""
        self._broadcast.subscribed(present, now)

    def receive_router_batch(self, messages: Iterable[list[bytes]], now: float, wall: float) -> None:
        """Messages that arrived on the ROUTER socket, each with its routing id first: one
        pass for a drained batch, so its new updates are appended to the log together."""
        self.wall_ms = int(wall * 1000)
        dispatch = self._dispatch
        for frames in messages:
            try:
                dispatch(frames[0], frames[1:], now)
            except ProtocolError as exc:
                self.stats.dropped_malformed += 1
                log.debug("%s: dropped malformed message: %s", self.id, exc)
        self._writes.propose_pending(now, self.wall_ms)
        self._flush(now)

    def receive_peer(self, peer_id: str, frames: list[bytes], now: float, wall: float) -> None:
        """A reply that arrived on the DEALER connected to ``peer_id``."""
        self.wall_ms = int(wall * 1000)
        try:
            self._dispatch_reply(peer_id, frames, now)
        except ProtocolError as exc:
            self.stats.dropped_malformed += 1
            log.debug("%s: dropped malformed reply from %s: %s", self.id, peer_id, exc)
        self._flush(now)

    def get_timer(self) -> float | None:
        candidates = [self._next_stream_sweep, self._next_rid_sweep]
        if self._catch_up is not None and not self._catch_up.after_install:
            candidates.append(self._catch_up.deadline)
        deadline = self.node.next_deadline()
        if deadline is not None:
            candidates.append(deadline)
        if self._broadcast.due is not None:
            candidates.append(self._broadcast.due)
        accepting = self._writes.deadline()
        if accepting is not None:
            candidates.append(accepting)
        return min(candidates)

    def handle_timer(self, now: float, wall: float) -> None:
        self.wall_ms = int(wall * 1000)
        self.node.tick(now, self.wall_ms)
        catch_up = self._catch_up
        if catch_up is not None and catch_up.timed_out(now):
            if catch_up.request_id:  # no answer: try the next peer
                catch_up.next_peer()
            self._send_peer(*catch_up.start(now))
        if now >= self._next_stream_sweep:
            self._next_stream_sweep = now + STREAM_SWEEP_INTERVAL
            self._streams.sweep(now)
        if now >= self._next_rid_sweep:
            self._next_rid_sweep = now + self.options.request_id_cache_sweep_interval
            self.node.request_ids.sweep(self.wall_ms)
        self._broadcast.tick(self.node, now)
        self._writes.tick(now)
        self._flush(now)

    def next_job(self) -> Job | ApplyJob | None:
        """Storage work first (it unblocks replies), then state-machine work."""
        job = self.node.next_storage_job()
        if job is not None:
            return job
        if self._apply_job is None:
            self._apply_job = self.node.next_apply_job()
            return self._apply_job
        return None

    def complete_job(
        self, job: Job | ApplyJob, now: float, wall: float, last_applied: int | None = None
    ) -> None:
        """The runtime finished ``job`` (``last_applied`` is the state machine's answer)."""
        self.wall_ms = int(wall * 1000)
        if isinstance(job, Job):
            self.node.storage_done(job, now, self.wall_ms)
        else:
            self._apply_job = None
            self.node.apply_done(job, job.last_index if last_applied is None else last_applied, now)
            self._broadcast.applied(self.node, job.entries, now)
            self._writes.applied()
        self._flush(now)

    def take_frames(
        self,
    ) -> tuple[list[tuple[bytes, list[bytes]]], list[tuple[str, list[bytes]]], list[list[bytes]]]:
        """The frames queued since the last call, per socket kind: (routing id, frames) for
        the ROUTER, (peer id, frames) for that peer's DEALER, frames for the PUB."""
        out = self._router_out, self._peer_out, self._pub_out
        self._router_out, self._peer_out, self._pub_out = [], [], []
        return out

    def next_event(self) -> Any:
        return self._events.popleft() if self._events else None

    def reply(self, routing_id: bytes, frames: list[bytes]) -> None:
        """Send a reply on the ROUTER (used by state machines for custom requests)."""
        self._router_out.append((routing_id, frames))

    def end_batch(self, now: float) -> None:
        """The inputs of one batch are in (the driver's round): let the node send what they
        made ready (one AppendEntries per follower for the batch's updates)."""
        self.node.end_batch(now)
        self._flush(now)

    def snapshot_installed(self, now: float) -> None:
        """The runtime installed a compaction snapshot from the watched install path."""
        self.node.log_compacted()
        self._flush(now)

    # ================================================================ inbound requests

    def _dispatch(self, routing_id: bytes, frames: list[bytes], now: float) -> None:
        if len(frames) < 3:
            raise ProtocolError(f"message with {len(frames)} frames: type or ident missing")
        if frames[2] != self.ident:
            self.stats.dropped_ident += 1
            return
        kind = frames[1]
        if kind == m.REQUEST_UPDATE and (update := m.RequestUpdate.fields(frames)) is not None:
            self._writes.update(routing_id, *update, now, self.wall_ms)  # the hot path: no message object
            return
        self._writes.propose_pending(now, self.wall_ms)  # the node sees every input in order
        if kind in m.PEER_TYPES:
            if not 1 <= len(frames[0]) <= 3:
                raise ProtocolError(f"peer message id of {len(frames[0])} bytes")
            self._dispatch_peer(routing_id, kind, frames, now)
            return
        msg = m.decode_request(frames)
        node = self.node
        if isinstance(msg, m.RequestConfig):
            leader = node.id if node.role is Role.LEADER else node.leader_id
            self.reply(
                routing_id,
                m.RequestConfigReply(
                    msg.request_id, node.role is Role.LEADER, leader, node.config.peers_union()
                ).encode(),
            )
        elif isinstance(msg, m.RequestLogInfo):
            self.reply(routing_id, self._log_info(msg.request_id).encode())
        elif isinstance(msg, m.RequestUpdate):
            self._writes.request_update(routing_id, msg, now, self.wall_ms)
        elif isinstance(msg, m.ConfigUpdate):
            self._writes.config_update(routing_id, msg, now, self.wall_ms)
        elif isinstance(msg, m.RequestEntries):
            self._streams.request(self.node, routing_id, msg, now)
        elif isinstance(msg, m.ClientDispatch):
            self._events.append(ClientRequest(routing_id, msg.request_id, msg.type, msg.args))

    def _dispatch_peer(self, routing_id: bytes, kind: bytes, frames: list[bytes], now: float) -> None:
        msg = m.decode_request(frames)
        sender: str
        if isinstance(msg, (m.RequestVote, m.PreVote)):
            sender = msg.candidate_id
            known = self.node.is_known_peer(sender)
        elif isinstance(msg, (m.AppendEntries, m.InstallSnapshot)):
            sender = msg.leader_id
            known = self.node.accepts_leader(sender, msg.term)
        else:  # unreachable: decode_request dispatches on the (peer) type byte
            raise ProtocolError(f"peer message type {bytes(kind)!r} decoded as {type(msg).__name__}")
        if not known:
            self.stats.dropped_unknown_peer += 1
            return
        self.metrics.heard[sender] = now
        debounced = kind not in UNDEBOUNCED
        if debounced:
            slot = self._debounce.get(sender)
            if slot is not None and slot.routing_id == routing_id and slot.msg_id == msg.msg_id:
                self.stats.debounced += 1
                if slot.reply is not None:
                    self.reply(routing_id, slot.reply)
                # not processed again, but it still shows that the leader is alive: a slow
                # disk (the reply still pending) must not let our election timer run out
                self.node.step(inputs.LeaderAlive(sender, msg.term), now, self.wall_ms)
                return
            self._debounce[sender] = _Debounce(routing_id, msg.msg_id)
        route = Route(routing_id, sender, msg.msg_id, debounced)
        self.node.step(inputs.PeerRequest(msg, route), now, self.wall_ms)
        if debounced and not self.node.will_answer(route):
            # ignored, not answered (its snapshot install was under way, say): the leader
            # re-sends this very message until it hears back, so the next copy must reach
            # the node instead of waiting on a reply that will never come
            self._debounce.pop(sender, None)

    def _dispatch_reply(self, peer_id: str, frames: list[bytes], now: float) -> None:
        if frames and len(frames[0]) == 4:  # RequestEntries of the CLIENT catch-up
            if self._catch_up is not None:
                reply = m.RequestEntriesReply.decode(frames)
                follow_up = self._catch_up.on_reply(reply, self.node, now, self.wall_ms)
                if follow_up is not None:
                    self._send_peer(peer_id, follow_up)
            return
        if not frames or not 1 <= len(frames[0]) <= 3:
            raise ProtocolError("peer reply frame 1: message id must be 1..3 bytes")
        msg_id = int.from_bytes(frames[0], "little")
        self.metrics.heard[peer_id] = now
        kinds = self._sent_kinds.get(peer_id)
        decode = kinds.get(msg_id) if kinds else None
        if decode is None:
            return  # stale: not a request we sent
        self.node.step(inputs.PeerReply(peer_id, decode(frames)), now, self.wall_ms)

    # ---------------------------------------------------------------- client RPCs

    def _log_info(self, request_id: bytes) -> m.RequestLogInfoReply:
        node = self.node
        leader = node.id if node.role is Role.LEADER else node.leader_id
        return m.RequestLogInfoReply(
            request_id,
            node.role is Role.LEADER,
            leader,
            node.term,
            node.log.first_index,
            node.last_applied,
            node.commit_index,
            node.log.last_index,
            node.log.snapshot.size,
            node.request_ids.prune_index(node.log.last_index),
        )

    # ================================================================ outputs

    def _queue_broadcast(self, frames: list[bytes]) -> None:
        self._pub_out.append(frames)

    def _send_peer(self, peer_id: str, frames: list[bytes]) -> None:
        self._peer_out.append((peer_id, frames))

    def _flush(self, now: float) -> None:
        """Turn the node's outputs into frames and events."""
        node = self.node
        if self._catch_up is not None:
            # done, promoted, or a leader already replicates to us: AppendEntries take over
            if self._catch_up.done or node.role is not Role.CLIENT or node.leader_id is not None:
                self._catch_up = None
            elif (resume := self._catch_up.resume(node, now)) is not None:
                self._send_peer(*resume)
        for out in node.take_outgoing():
            self._emit(out)
        for event in node.take_events():
            if isinstance(event, StateChanged):
                self._on_state(event, now)
            elif isinstance(event, ConfigCommitted):
                self._writes.config_committed(event)
            elif isinstance(event, ConfigChanged):
                live = {pid for pid, _ in event.config.others(self.id)}
                for pid in list(self._debounce):
                    if pid not in live:
                        del self._debounce[pid]
            self._events.append(event)

    def _emit(self, out: Outgoing) -> None:
        msg = out.message
        if out.peer is not None:
            frames = msg.encode(self.ident)
            kinds = self._sent_kinds.setdefault(out.peer, OrderedDict())
            kinds[msg.msg_id] = _REPLY_CLASS[type(msg)]
            while len(kinds) > 1024:
                kinds.popitem(last=False)
            self._peer_out.append((out.peer, frames))
            return
        route: Route = out.route
        frames = msg.encode()
        if route.debounced:
            slot = self._debounce.get(route.sender)
            if slot is not None and slot.routing_id == route.routing_id and slot.msg_id == route.msg_id:
                slot.reply = frames
        self._router_out.append((route.routing_id, frames))

    def _on_state(self, event: StateChanged, now: float) -> None:
        self._broadcast.role_changed(event.role is Role.LEADER, now)
        if event.role is not Role.LEADER:
            self._writes.leadership_lost()
            self._streams.clear()


_REPLY_CLASS: dict[type[PeerRequest], ReplyDecoder] = {
    m.RequestVote: m.RequestVoteReply.decode,
    m.AppendEntries: m.AppendEntriesReply.decode,
    m.InstallSnapshot: m.InstallSnapshotReply.decode,
    m.PreVote: m.PreVoteReply.decode,
}


def hard_state_from(state: dict[str, Any]) -> HardState:
    """The node's hard state from a raft.pers map (original key names)."""
    peers = state.get("peers")
    config = ClusterConfig.from_json(peers) if peers is not None else ClusterConfig(())
    request = state.get("peersUpdateRequest")
    return HardState(
        term=int(state.get("currentTerm") or 0),
        voted_for=state.get("votedFor"),
        config=config,
        config_request=base64.b64decode(request) if isinstance(request, str) else None,
        config_index=None if state.get("peersIndex") is None else int(state["peersIndex"]),
    )
