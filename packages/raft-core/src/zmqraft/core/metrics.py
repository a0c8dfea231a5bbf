"""What a peer counts about itself, and the metric families read from it at scrape time.

Theory of operation.  The hot path only ever does integer and float arithmetic on
``PeerMetrics`` (one object per peer, owned by its ``PeerServer``): a few increments per
batch of inputs, a bucket index per storage job and per event-loop pump.  Nothing here holds
a lock or makes an object per update.  Everything else (role, indexes, per-follower match,
the request-id cache size) is read from the peer itself when metrics are asked for.

``families(server, now, dropped_sends)`` turns one peer into plain ``Family`` records (gauges,
counters, histograms with Prometheus' cumulative ``le`` buckets); a server runtime hands them
to ``prometheus_client`` through a custom collector, so raft-core needs no metrics library.
The web monitor's ``/status`` and page use the same readings (``last_heard``,
``quorum_healthy``, the commit-index samples and the timeline of recent events).

Metric names and meanings are listed in docs/metrics.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .raft import quorum
from .raft.node import Role

if TYPE_CHECKING:
    from .server import PeerServer

#: seconds: storage jobs (a write and its fsync) from hand-out to completion
STORAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: entries appended by one storage job (the group commit of a batch)
BATCH_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
#: seconds: one event-loop wake-up (drain, rounds, sends) until the sockets are quiet
ROUND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

COMMIT_SAMPLE_INTERVAL = 1.0  # seconds between samples of the commit index
COMMIT_SAMPLES = 600  # ten minutes of them
TIMELINE_SIZE = 100  # recent events kept for the web page

ROLE_LABELS = {
    Role.LEADER: "leader",
    Role.FOLLOWER: "follower",
    Role.CANDIDATE: "candidate",
    Role.CLIENT: "client",
}


class Histogram:
    """Fixed buckets: ``counts[i]`` values <= ``bounds[i]`` (and above the previous bound),
    the last count for values above every bound.  ``observe`` is a bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: ``(le, values <= le)``, ending with ``("+Inf", count)``."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of the web page's timeline."""

    wall: float  # epoch seconds
    kind: str  # election, leader, role, config, snapshot
    text: str


@dataclass(eq=False, slots=True)
class PeerMetrics:
    """The counters of one peer (see the module doc for what may touch them when)."""

    elections_started: int = 0
    elections_won: int = 0
    leader_changes: int = 0
    updates_received: int = 0  # RequestUpdate messages, in any role
    updates_accepted: int = 0  # new entries proposed for them (leader)
    updates_committed: int = 0  # answered COMMITTED (applied)
    updates_expired: int = 0  # answered EXPIRED
    curve_refused_handshakes: int = 0  # CurveZMQ handshakes refused (ZAP) or failed (wrong keys)
    curve_refused_messages: int = 0  # peer RPCs dropped: not sent with the named peer's key
    storage_seconds: Histogram = field(default_factory=lambda: Histogram(STORAGE_BUCKETS))
    append_batch: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    loop_round: Histogram = field(default_factory=lambda: Histogram(ROUND_BUCKETS))
    #: (epoch seconds, commit index), every COMMIT_SAMPLE_INTERVAL while the peer runs rounds
    commit_samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=COMMIT_SAMPLES))
    next_sample: float = 0.0  # monotonic
    timeline: deque[TimelineEvent] = field(default_factory=lambda: deque(maxlen=TIMELINE_SIZE))
    #: peer id -> monotonic time its last message (request or reply) arrived
    heard: dict[str, float] = field(default_factory=dict)
    leader_seen: str | None = None  # the last leader this peer knew of (leader changes)
    role_seen: Role | None = None  # the role of the last state change (the timeline)

    def sample_commit(self, now: float, wall: float, commit_index: int) -> None:
        """Called every round; keeps one sample per ``COMMIT_SAMPLE_INTERVAL``."""
        if now >= self.next_sample:
            self.next_sample = now + COMMIT_SAMPLE_INTERVAL
            self.commit_samples.append((wall, commit_index))

    def event(self, wall: float, kind: str, text: str) -> None:
        self.timeline.append(TimelineEvent(wall, kind, text))


def metrics_bind(options: Mapping[str, Any]) -> tuple[str, int] | None:
    """Where the peer's own metrics endpoint listens (validated ``metrics`` options; a peer
    entry's ``metrics: host:port`` sets both), or None when ``metrics.enable`` is off."""
    metrics = options.get("metrics") or {}
    if not metrics.get("enable"):
        return None
    return str(metrics.get("host") or "127.0.0.1"), int(metrics.get("port") or 0)


# ---- readings shared by /metrics and /status -------------------------------------------------


def last_heard(server: PeerServer, now: float) -> dict[str, float | None]:
    """Seconds since each other member of the configuration was last heard from (None: never)."""
    heard = server.metrics.heard
    out: dict[str, float | None] = {}
    for peer_id, _url in server.node.config.others(server.id):
        at = heard.get(peer_id)
        out[peer_id] = None if at is None else max(0.0, now - at)
    return out


def quorum_healthy(server: PeerServer, now: float) -> bool | None:
    """Can this peer see a working majority?  A leader: it heard from a majority of every
    voter group within the longest election timeout; a follower or candidate: it knows a
    leader and heard from it that recently.  None for a CLIENT (not a member).
    (A seam: a checkQuorum of the Raft node may answer this more precisely.)"""
    node = server.node
    window = node.options.election_timeout_max
    heard = server.metrics.heard
    if node.role is Role.LEADER:
        alive = {node.id} | {p for p, at in heard.items() if now - at <= window}
        return quorum.has_majority(node.config, alive)
    if node.role is Role.CLIENT:
        return None
    leader = node.leader_id
    at = heard.get(leader) if leader is not None else None
    return at is not None and now - at <= window


def follower_match(server: PeerServer) -> dict[str, int]:
    """The leader's match index of each follower (empty unless leading)."""
    return server.node.follower_match()


# ---- metric families --------------------------------------------------------------------------

Kind = Literal["gauge", "counter", "histogram"]
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: ``samples`` are ``(labels, value)`` for gauges and counters (a counter's
    name has no ``_total``: the exposition adds it); a histogram has ``buckets``
    (``(le, cumulative count)``) and ``sum`` in a single sample-less family."""

    name: str
    kind: Kind
    help: str
    samples: tuple[tuple[Labels, float], ...] = ()
    buckets: tuple[tuple[str, int], ...] = ()
    sum: float = 0.0


def _gauge(name: str, help: str, value: float, labels: Labels = ()) -> Family:
    return Family(name, "gauge", help, ((labels, float(value)),))


def _counter(name: str, help: str, value: float) -> Family:
    return Family(name, "counter", help, (((), float(value)),))


def _histogram(name: str, help: str, histogram: Histogram) -> Family:
    return Family(name, "histogram", help, buckets=tuple(histogram.cumulative()), sum=histogram.sum)


def families(server: PeerServer, now: float, dropped_sends: int, label: str | None = None) -> list[Family]:
    """Every metric of the peer ``server`` at monotonic time ``now`` (docs/metrics.md)."""
    node = server.node
    metrics = server.metrics
    stats = server.stats
    snapshot = node.log.snapshot
    info: Labels = (("id", server.id), ("label", label or ""))
    match = follower_match(server)
    healthy = quorum_healthy(server, now)
    roles = tuple(
        ((("role", name),), 1.0 if node.role is role else 0.0) for role, name in ROLE_LABELS.items()
    )
    heard = tuple(
        ((("peer", peer_id),), -1.0 if ago is None else ago)
        for peer_id, ago in last_heard(server, now).items()
    )
    return [
        _gauge("zmqraft_peer_info", "This peer's id and label (always 1).", 1, info),
        Family("zmqraft_role", "gauge", "1 for the peer's current Raft role, 0 for the others.", roles),
        _gauge("zmqraft_term", "The current Raft term.", node.term),
        _gauge("zmqraft_commit_index", "The highest log index known committed.", node.commit_index),
        _gauge(
            "zmqraft_applied_index", "The highest log index applied to the state machine.", node.last_applied
        ),
        _gauge("zmqraft_last_index", "The last index of the log.", node.log.last_index),
        _gauge(
            "zmqraft_first_index", "The first index of the log (after the snapshot).", node.log.first_index
        ),
        _gauge("zmqraft_snapshot_index", "The log index the snapshot covers.", snapshot.index),
        _gauge("zmqraft_snapshot_size_bytes", "The size of the snapshot's data.", snapshot.size),
        _gauge(
            "zmqraft_config_members",
            "Peers of the configuration (old and new while joint).",
            len(node.config.ids),
        ),
        _gauge(
            "zmqraft_config_joint",
            "1 while a joint configuration (a membership change) is in force.",
            node.config.is_joint,
        ),
        _gauge(
            "zmqraft_quorum_healthy",
            "1 if this peer sees a working majority (see docs/metrics.md), 0 if not, -1 for a non-member.",
            -1 if healthy is None else int(healthy),
        ),
        Family(
            "zmqraft_follower_match_index",
            "gauge",
            "The leader's highest index known stored on each follower (leader only).",
            tuple(((("follower", p),), float(i)) for p, i in match.items()),
        ),
        Family(
            "zmqraft_follower_lag_entries",
            "gauge",
            "Entries of the leader's log not yet stored on each follower (leader only).",
            tuple(((("follower", p),), float(node.log.last_index - i)) for p, i in match.items()),
        ),
        Family(
            "zmqraft_peer_last_heard_seconds",
            "gauge",
            "Seconds since a message of each other member arrived (-1: never).",
            heard,
        ),
        _counter(
            "zmqraft_elections_started",
            "Elections this peer started (terms it became a candidate in).",
            metrics.elections_started,
        ),
        _counter(
            "zmqraft_elections_won",
            "Elections this peer won (terms it became the leader in).",
            metrics.elections_won,
        ),
        _counter(
            "zmqraft_leader_changes", "Times this peer learned of a different leader.", metrics.leader_changes
        ),
        _counter(
            "zmqraft_updates_received",
            "RequestUpdate messages received (in any role, retries included).",
            metrics.updates_received,
        ),
        _counter(
            "zmqraft_updates_accepted",
            "Updates appended to the log as new entries (leader).",
            metrics.updates_accepted,
        ),
        _counter(
            "zmqraft_updates_committed",
            "Updates answered COMMITTED once applied (leader).",
            metrics.updates_committed,
        ),
        _counter(
            "zmqraft_updates_expired",
            "Updates refused as EXPIRED (request id too old).",
            metrics.updates_expired,
        ),
        _gauge(
            "zmqraft_request_id_cache_entries", "Request ids in the idempotency cache.", len(node.request_ids)
        ),
        _histogram(
            "zmqraft_storage_write_seconds",
            "Storage jobs (writes and their fsync) from hand-out to completion.",
            metrics.storage_seconds,
        ),
        _histogram(
            "zmqraft_append_batch_entries",
            "Entries appended to the log by one storage job.",
            metrics.append_batch,
        ),
        _histogram(
            "zmqraft_event_loop_round_seconds",
            "One event-loop wake-up: reading, rounds and sends until the sockets are quiet.",
            metrics.loop_round,
        ),
        _counter(
            "zmqraft_dropped_sends",
            "Messages dropped on send (a full queue or no connection).",
            dropped_sends,
        ),
        _counter(
            "zmqraft_bad_frames", "Messages dropped as malformed (ProtocolError).", stats.dropped_malformed
        ),
        _counter(
            "zmqraft_wrong_secret_messages",
            "Messages dropped for a wrong cluster secret.",
            stats.dropped_ident,
        ),
        _counter(
            "zmqraft_unknown_peer_messages",
            "Peer messages dropped from peers outside the configuration.",
            stats.dropped_unknown_peer,
        ),
        _counter(
            "zmqraft_curve_refused_handshakes",
            "CurveZMQ handshakes refused or failed: an unknown key, a wrong server key, no CurveZMQ.",
            metrics.curve_refused_handshakes,
        ),
        _counter(
            "zmqraft_curve_refused_messages",
            "Peer RPCs dropped: sent with a client key or another peer's key (CurveZMQ on).",
            metrics.curve_refused_messages,
        ),
    ]


__all__ = [
    "COMMIT_SAMPLE_INTERVAL",
    "Family",
    "Histogram",
    "PeerMetrics",
    "TimelineEvent",
    "families",
    "follower_match",
    "last_heard",
    "metrics_bind",
    "quorum_healthy",
]
