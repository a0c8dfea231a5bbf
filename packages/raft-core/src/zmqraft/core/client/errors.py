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


class ExpiredRequestError(ClientError):
    """The leader rejected the request id as not fresh (final, spec/client.md §9)."""

    def __init__(self, operation: str, request_id: bytes) -> None:
        super().__init__(
            f"{operation}: expired request id {request_id.hex()}: the leader accepts ids made within "
            "the last 7 h 45 min and at most 15 min ahead; check this machine's clock and retry with "
            "a new request id"
        )
        self.request_id = request_id


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
    "ExpiredRequestError",
    "NotLeaderError",
    "OutOfOrderError",
    "RequestTimeoutError",
    "ResumeState",
]
