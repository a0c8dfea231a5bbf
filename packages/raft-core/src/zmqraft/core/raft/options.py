"""Raft timing and size options (spec/raft.md §3), in seconds and bytes.

Names follow the original's option names in snake case; ``zmqraft.core.config`` maps the
original camelCase keys (milliseconds) onto these.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..request_ids import DEFAULT_CACHE_MAX, DEFAULT_RETAIN


@dataclass(frozen=True, slots=True)
class RaftOptions:
    election_timeout_min: float = 0.200
    election_timeout_max: float = 0.300
    startup_margin: float = 0.300
    rpc_timeout: float = 0.050
    append_entries_heartbeat_interval: float = 0.070
    append_entries_rpc_timeout_min: float = 0.070
    append_entries_rpc_timeout_max: float = 0.140
    peer_msg_data_size: int = 65536
    max_log_entry_data_size: int = 10 * 1024 * 1024
    request_id_ttl: float | None = 8 * 3600.0
    request_id_ttl_accept_margin: float = 900.0
    request_id_cache_max: int | None = DEFAULT_CACHE_MAX  # beyond the original (unbounded there)
    request_id_cache_sweep_interval: float = 10.0
    request_id_cache_retain: float = DEFAULT_RETAIN  # the cap never drops ids younger than this
    request_entries_high_watermark: int = 8000
    request_entries_ttl: float = 5.0
    request_entries_pipelines: int = 5
    request_entries_entry_size_limit_pipeline: int = 65536
    request_entries_snapshot_pipelines: int = 2
    prevent_spiral_elections: bool = True
    # Beyond the original (Raft thesis §6.2, §9.6; docs/protocol-extensions.md):
    # a leader that has not heard from a majority within election_timeout_max steps down;
    check_quorum: bool = True
    # a peer whose election timer runs out first asks for pre-votes (a new message type the
    # original does not answer: off while the cluster may hold original peers).
    pre_vote: bool = False
    # Beyond the original: AppendEntries in flight per follower (1 = the original's behaviour).
    max_inflight_messages: int = 16
    max_inflight_bytes: int = 4 * 1024 * 1024
    # ... but once this many are in flight, new entries that fit in one message wait for an
    # acknowledgement and go with whatever comes meanwhile: under load the followers write
    # fewer, larger batches (1.04x updates/s, 10% less CPU a follower); a catch-up, with more
    # than a message to send, still pipelines up to max_inflight_messages.
    coalesce_inflight_messages: int = 2
    # Simulation only: follow the original follower, which truncates after prevIndex on every
    # matching AppendEntries instead of only at the first conflicting entry.
    truncate_on_match: bool = False

    def __post_init__(self) -> None:
        if self.election_timeout_min < 0.1 or self.election_timeout_max < self.election_timeout_min:
            raise ValueError("election timeouts: need 0.1 <= min <= max")
        if not 0.01 <= self.rpc_timeout <= self.election_timeout_min:
            raise ValueError("rpc_timeout must lie in [0.01, election_timeout_min]")
        if self.max_inflight_messages < 1:
            raise ValueError("max_inflight_messages must be >= 1")
        if self.coalesce_inflight_messages < 1:
            raise ValueError("coalesce_inflight_messages must be >= 1")
        if self.peer_msg_data_size < 64:
            raise ValueError("peer_msg_data_size must be >= 64")
        if self.request_id_ttl is None and self.request_id_cache_max is None:
            raise ValueError("request_id_ttl and request_id_cache_max must not both be None")
