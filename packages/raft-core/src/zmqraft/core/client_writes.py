"""A leader's write RPCs: RequestUpdate and ConfigUpdate (spec/protocol.md §9.3, §9.4).

RequestUpdate is idempotent by request id: an id already in the log is answered with its
index once the entry is applied (COMMITTED), or with ACCEPTED while it is not; a new id that
is still fresh is proposed, and answered ACCEPTED only if it is still waiting
``ACCEPTED_AFTER`` seconds later (most updates commit sooner, and one reply instead of two
saves a send on the leader and a receive on the client; a client waits 500 ms for a response
by default, and an ACCEPTED refreshes that); an id too old to be told apart from one that left
the cache is EXPIRED.  Replies that wait are kept by request id with the index of their
entry, so they are answered by index even if the id leaves the request-id cache (TTL sweep)
before the entry is applied.

ConfigUpdate starts a joint configuration C(old,new); its reply waits until C(old,new) is
committed (the node then appends C(new) itself).  One membership change at a time: another
request id while one is pending is BUSY.

Losing leadership answers every waiting request NOT_LEADER with the new leader, if known.

An update larger than ``maxLogEntryDataSize`` is dropped without an answer: the protocol
has no reply for it (every RequestUpdate answer means "not the leader", "expired",
"accepted" or "committed", and an original client would take any of them for something it
is not).  It is logged instead, once per ``OVERSIZED_LOG_INTERVAL`` with the count since,
so a client retrying it every 0.5 s does not flood the log.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from .cluster import ConfigError
from .metrics import PeerMetrics
from .protocol import messages as m
from .raft import inputs
from .raft.node import ConfigCommitted, RaftNode, Role
from .raft.options import RaftOptions
from .request_ids import is_fresh

Reply = Callable[[bytes, list[bytes]], None]

log = logging.getLogger("zmqraft.server")

ACCEPTED_AFTER = 0.1  # seconds a new update may wait for its COMMITTED before an ACCEPTED
OVERSIZED_LOG_INTERVAL = 60.0  # seconds between two warnings about dropped oversized updates


class ClientWrites:
    """The write RPCs of one peer; replies leave through ``reply(routing_id, frames)``."""

    def __init__(
        self, node: RaftNode, options: RaftOptions, reply: Reply, metrics: PeerMetrics | None = None
    ) -> None:
        self.node = node
        # counts of updates received and answered (the peer's, shared with its metrics)
        self.metrics = PeerMetrics() if metrics is None else metrics
        self.options = options
        ttl = options.request_id_ttl  # (the options are frozen: the freshness window once)
        self._ttl_ms = None if ttl is None else int(ttl * 1000)
        self._margin_ms = int(options.request_id_ttl_accept_margin * 1000)
        self._reply = reply
        # reqid -> (routing id of the first request, index of its entry)
        self._waiting_updates: dict[bytes, tuple[bytes, int]] = {}
        # (index, reqid) of the waiting updates in index order: a new proposal always lands
        # at the end of the log, so an apply answers a prefix; an id found in the cache but
        # not yet applied may be older and goes to the stragglers (rare: a retry)
        self._by_index: deque[tuple[int, bytes]] = deque()
        self._stragglers: dict[bytes, int] = {}
        self._config_reply: tuple[bytes, bytes] | None = None  # reqid, routing id
        self._unaccepted: deque[tuple[float, bytes]] = deque()  # (ACCEPTED due, reqid), in order
        # new updates of the batch being received, proposed together by ``propose_pending``
        # (each already has its index in ``_waiting_updates``: the next ones after the log's end)
        self._proposals: list[tuple[bytes, bytes]] = []
        self._first_proposal = 0  # the index the first of them will get
        self.oversized_updates = 0  # updates dropped for exceeding maxLogEntryDataSize
        self._oversized_logged_at: float | None = None
        self._oversized_unlogged = 0
        #: why a new configuration of these peer ids cannot be used (None: it can); with
        #: CurveZMQ on, a peer without a public key (``curve_policy.CurveSetup.refuse_config``)
        self.refuse_config: Callable[[list[str]], str | None] | None = None

    # ---- RequestUpdate

    def request_update(self, routing_id: bytes, msg: m.RequestUpdate, now: float, wall_ms: int) -> None:
        self.update(routing_id, msg.request_id, msg.data, now, wall_ms)

    def update(self, routing_id: bytes, rid: bytes, data: bytes, now: float, wall_ms: int) -> None:
        """A decoded RequestUpdate (its request id and data: the server decodes the hot
        path's without a message object)."""
        node = self.node
        self.metrics.updates_received += 1
        if len(data) > self.options.max_log_entry_data_size:
            self._oversized(rid, len(data), now)
            return
        if node.role is not Role.LEADER:
            self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.NOT_LEADER, node.leader_id))
            return
        if rid in self._waiting_updates:
            self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.ACCEPTED))
            return
        index = node.request_ids.get(rid)
        if index is not None:
            if index <= node.last_applied:
                self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.COMMITTED, index=index))
            else:
                self._waiting_updates[rid] = (routing_id, index)
                self._stragglers[rid] = index
                self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.ACCEPTED))
            return
        if not self._is_fresh(rid, wall_ms):
            self.metrics.updates_expired += 1
            self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.EXPIRED))
            return
        proposals = self._proposals
        if not proposals:
            self._first_proposal = node.log.last_index + 1
        index = self._first_proposal + len(proposals)
        proposals.append((rid, data))
        self.metrics.updates_accepted += 1
        self._waiting_updates[rid] = (routing_id, index)
        self._by_index.append((index, rid))
        self._unaccepted.append((now + ACCEPTED_AFTER, rid))

    def propose_pending(self, now: float, wall_ms: int) -> None:
        """Append the batch's new updates to the log as one proposal.  Called after a batch
        of inputs, and before any other input reaches the node (it must find them appended)."""
        if self._proposals:
            updates, self._proposals = self._proposals, []
            last = self.node.step(inputs.ProposeBatch(updates), now, wall_ms)
            if last != self._first_proposal + len(updates) - 1:
                raise AssertionError(f"proposed {len(updates)} updates ending at {last}")

    def _oversized(self, rid: bytes, size: int, now: float) -> None:
        """Count a dropped oversized update; warn about the first and then at most once per
        ``OVERSIZED_LOG_INTERVAL`` (a client retries it until its deadline)."""
        self.oversized_updates += 1
        self._oversized_unlogged += 1
        last = self._oversized_logged_at
        if last is not None and now - last < OVERSIZED_LOG_INTERVAL:
            return
        more = self._oversized_unlogged - 1
        since = f" ({more} more dropped since the last warning)" if last is not None and more else ""
        log.warning(
            "%s: dropped a RequestUpdate of %d bytes (request id %s): over maxLogEntryDataSize = %d "
            "bytes; the protocol has no reply for it, so the client hears nothing until its deadline%s",
            self.node.id,
            size,
            rid.hex(),
            self.options.max_log_entry_data_size,
            since,
        )
        self._oversized_logged_at = now
        self._oversized_unlogged = 0

    def deadline(self) -> float | None:
        """When a new update that still waits must hear ACCEPTED."""
        unaccepted, waiting = self._unaccepted, self._waiting_updates
        while unaccepted and unaccepted[0][1] not in waiting:
            unaccepted.popleft()  # answered already: no timer for it
        return unaccepted[0][0] if unaccepted else None

    def tick(self, now: float) -> None:
        unaccepted, waiting = self._unaccepted, self._waiting_updates
        while unaccepted and unaccepted[0][0] <= now:
            _, rid = unaccepted.popleft()
            found = waiting.get(rid)
            if found is not None:
                self._update(found[0], m.RequestUpdateReply(rid, m.UpdateStatus.ACCEPTED))

    def applied(self) -> None:
        """The state machine applied up to the node's ``last_applied``: answer who waits."""
        applied = self.node.last_applied
        by_index = self._by_index
        while by_index and by_index[0][0] <= applied:
            index, rid = by_index.popleft()
            self._answer(rid, index)
        if self._stragglers:
            for rid, index in list(self._stragglers.items()):
                if index <= applied:
                    del self._stragglers[rid]
                    self._answer(rid, index)

    def _answer(self, rid: bytes, index: int) -> None:
        found = self._waiting_updates.get(rid)
        if found is not None and found[1] == index:
            del self._waiting_updates[rid]
            self.metrics.updates_committed += 1
            self._reply(found[0], m.committed_update_reply(rid, index))

    def _update(self, routing_id: bytes, reply: m.RequestUpdateReply) -> None:
        self._reply(routing_id, reply.encode())

    def _is_fresh(self, request_id: bytes, wall_ms: int) -> bool:
        if self.node.request_ids.may_be_evicted(request_id):
            return False  # the cap may have dropped it: appending it again could apply it twice
        return is_fresh(request_id, wall_ms, self._ttl_ms, self._margin_ms)

    # ---- ConfigUpdate

    def config_update(self, routing_id: bytes, msg: m.ConfigUpdate, now: float, wall_ms: int) -> None:
        node = self.node
        rid = msg.request_id

        def answer(reply: m.ConfigUpdateReply) -> None:
            self._reply(routing_id, reply.encode())

        if node.role is not Role.LEADER:
            answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.NOT_LEADER, node.leader_id))
            return
        if self._config_reply is not None:
            if self._config_reply[0] == rid:
                self._config_reply = (rid, routing_id)
                answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.ACCEPTED))
            else:
                answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.BUSY))
            return
        index = node.request_ids.get(rid)
        if index is None:
            if not self._is_fresh(rid, wall_ms):
                answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.EXPIRED))
                return
            if node.config.is_joint:
                answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.BUSY))
                return
            try:
                joint = node.config.join(msg.peers)
            except ConfigError as exc:
                answer(
                    m.ConfigUpdateReply(
                        rid, m.ConfigUpdateStatus.ERROR, error_name=exc.name, error_message=exc.message
                    )
                )
                return
            new_ids = [peer_id for peer_id, _ in joint.new or ()]
            refused = None if self.refuse_config is None else self.refuse_config(new_ids)
            if refused is not None:
                log.error("%s: configuration update refused: %s", self.node.id, refused)
                answer(
                    m.ConfigUpdateReply(
                        rid, m.ConfigUpdateStatus.ERROR, error_name="CurveKeyError", error_message=refused
                    )
                )
                return
            self._config_reply = (rid, routing_id)
            answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.ACCEPTED))
            node.step(inputs.ProposeConfig(joint, rid), now, wall_ms)
        elif index <= node.commit_index:
            answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.ACCEPTED, index=index))
        elif node.config_request is not None and node.config.is_joint and rid == node.config_request:
            self._config_reply = (rid, routing_id)
            answer(m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.ACCEPTED))
        else:
            answer(
                m.ConfigUpdateReply(
                    rid,
                    m.ConfigUpdateStatus.ERROR,
                    error_name="Error",
                    error_message="wrong request id log entry type",
                )
            )

    def config_committed(self, event: ConfigCommitted) -> None:
        if self._config_reply is not None and self._config_reply[0] == event.request_id:
            rid, routing_id = self._config_reply
            self._reply(
                routing_id,
                m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.ACCEPTED, index=event.joint_index).encode(),
            )
            self._config_reply = None

    # ---- leadership lost

    def leadership_lost(self) -> None:
        """Every waiting request hears NOT_LEADER, with the new leader if known."""
        leader = self.node.leader_id
        for rid, (routing_id, _) in self._waiting_updates.items():
            self._update(routing_id, m.RequestUpdateReply(rid, m.UpdateStatus.NOT_LEADER, leader))
        self._waiting_updates.clear()
        self._by_index.clear()
        self._stragglers.clear()
        self._unaccepted.clear()
        if self._config_reply is not None:
            rid, routing_id = self._config_reply
            reply = m.ConfigUpdateReply(rid, m.ConfigUpdateStatus.NOT_LEADER, leader)
            self._reply(routing_id, reply.encode())
            self._config_reply = None


__all__ = ["ClientWrites"]
