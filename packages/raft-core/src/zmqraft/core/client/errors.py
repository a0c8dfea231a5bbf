"""The errors a client caller can get (spec/client.md §10), each saying what to do about it.

All derive from ``ClientError``.  Timeouts also derive from the built-in ``TimeoutError`` and
configuration errors from ``ValueError``, so generic handlers keep working.  Errors of a
RequestEntries stream carry ``resume``: where a new stream would continue without delivering
anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResumeState:
    """Where an interrupted RequestEntries stream continues (the original's
    ``requestEntriesState``): ``prev_index`` of the next request, the ``count`` still wanted
    (None = to the end) and the snapshot byte ``snapshot_offset`` (None = not inside a
    snapshot transfer)."""

    prev_index: int
    count: int | None
    snapshot_offset: int | None


class ClientError(Exception):
    """Base class of every error the zmq-raft client raises."""

    resume: ResumeState | None = None


class RequestTimeoutError(ClientError, TimeoutError):
    """No (useful) answer before the deadline.

    With a cluster client this is raised only after the operation's overall deadline passed
    and the last attempt failed; the message names the peers that were tried.
    """

    is_timeout = True


class NotLeaderError(ClientError):
    """The peer asked is not the leader (only from requests pinned to one peer: cluster
    operations follow the leader themselves)."""

    is_peer_not_leader = True

    def __init__(self, leader_id: str | None, url: str | None = None) -> None:
        where = f" at {url}" if url else ""
        hint = f"the leader is {leader_id!r}" if leader_id else "no leader is known right now"
        super().__init__(
            f"the peer{where} is not the leader ({hint}); ask the leader or use a cluster request"
        )
        self.leader_id = leader_id
        self.url = url


DEFAULT_TTL_S = 8 * 3600  # the server's requestIdTtl (spec/protocol.md §9.3)
DEFAULT_MARGIN_S = 15 * 60  # its requestIdTtlAcceptMargin: the window is [now - 7 h 45 min, now + 15 min]


class ExpiredRequestError(ClientError):
    """The leader rejected the request id as not fresh (final, spec/client.md §9).

    The leader accepts an id whose timestamp (seconds 0..3 of the id, this machine's wall
    clock when the id was made) lies in ``[leader's now - (requestIdTtl -
    requestIdTtlAcceptMargin), leader's now + requestIdTtlAcceptMargin]``: by default 7 h 45
    min back to 15 min ahead.  ``age`` is how old the id was by this machine's clock when
    the leader refused it (None if unknown): an id that is fresh by this clock means the two
    clocks differ by more than the window allows, or the leader's bounded request-id cache
    (``requestIdCacheMax``) already dropped ids this recent (``clock_skew_suspected``).
    """

    def __init__(self, operation: str, request_id: bytes, age: float | None = None) -> None:
        self.request_id = request_id
        self.age = age
        back = DEFAULT_TTL_S - DEFAULT_MARGIN_S  # how old an id may be: 7 h 45 min
        self.clock_skew_suspected = age is not None and -DEFAULT_MARGIN_S <= age <= back
        window = "the leader accepts ids made at most 7 h 45 min before and 15 min after its clock's now"
        if age is None:
            why = "check this machine's clock"
        elif self.clock_skew_suspected:
            why = (
                f"the id is {_span(age)} old by this machine's clock, so either the leader's clock is over "
                f"{_span(DEFAULT_MARGIN_S + age)} behind this machine's or over {_span(back - age)} ahead "
                "(with the default requestIdTtl and requestIdTtlAcceptMargin), or the leader's request-id "
                "cache (requestIdCacheMax) already dropped ids this recent (this clock behind the leader's "
                "by more than the cache spans at its write rate, or a retry that late): synchronise the "
                "clocks (NTP)"
            )
        elif age > 0:
            why = f"the id is {_span(age)} old by this machine's clock: too old to be applied exactly once"
        else:
            why = f"the id is stamped {_span(-age)} in the future by this machine's clock"
        super().__init__(
            f"{operation}: expired request id {request_id.hex()}: {window}; {why}; retry with a new id"
        )


def _span(seconds: float) -> str:
    """``3 h 05 min``, ``12 min 30 s``, ``4.2 s``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class UpdateTooLargeError(ClientError, ValueError):
    """The update is larger than the cluster accepts (its ``maxLogEntryDataSize``); refused
    before it was sent, because a peer drops such an update without an answer."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"requestUpdate: the update is {size} bytes, over the limit of {limit} bytes (the cluster's "
            "maxLogEntryDataSize, as the client's max_update_size says); split the data, or raise both "
            "maxLogEntryDataSize on every peer and max_update_size"
        )
        self.size = size
        self.limit = limit


class ConnectError(ClientError, ConnectionError):
    """A ZeroMQ socket to a peer could not be opened or connected (``Too many open files``:
    the context's socket budget or the process's file limit is spent); the operation that
    needed it ends with this error at once instead of waiting for its deadline."""

    def __init__(self, url: str, reason: str, hint: str = "") -> None:
        super().__init__(f"cannot open a ZeroMQ socket to {url}: {reason}" + (f"; {hint}" if hint else ""))
        self.url = url
        self.reason = reason


class ConfigUpdateError(ClientError, ValueError):
    """ConfigUpdate status 2: the leader rejected the new configuration (``name`` is the error
    class the server reports, ``message`` its reason); fix the peer list before retrying."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(
            f"configUpdate rejected by the leader: {message} ({name}); fix the peer list and retry"
        )
        self.name = name
        self.message = message


class ClusterBusyError(ClientError):
    """ConfigUpdate status 3: another membership change is still in progress."""

    def __init__(self) -> None:
        super().__init__(
            "configUpdate: cluster in configuration transition; wait until the current membership "
            "change is committed (request_config shows the final peers) and retry"
        )


class OutOfOrderError(ClientError):
    """Entries or snapshot chunks did not continue where the previous ones ended."""

    is_out_of_order = True


class BroadcastUrlMissingError(ClientError):
    """A pinned ``*`` request got an answer without a URL (the peer's state machine does not
    publish); ask the leader, or use a state machine that broadcasts."""

    def __init__(self, url: str) -> None:
        super().__init__(f"broadcast state url missing in the response from {url}; ask the leader")


class ClientClosedError(ClientError):
    """The client was closed while the operation was pending, or used after ``close()``."""

    def __init__(self, message: str = "client closed; create a new client to continue") -> None:
        super().__init__(message)


__all__ = [
    "BroadcastUrlMissingError",
    "ClientClosedError",
    "ClientError",
    "ClusterBusyError",
    "ConfigUpdateError",
    "ConnectError",
    "ExpiredRequestError",
    "NotLeaderError",
    "OutOfOrderError",
    "RequestTimeoutError",
    "ResumeState",
    "UpdateTooLargeError",
]
