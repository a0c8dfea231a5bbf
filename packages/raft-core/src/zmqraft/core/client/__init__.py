"""The client side of zmq-raft, sans-IO (spec/client.md).

``ClientProtocol`` is one client's view of a cluster: leader discovery and fail-over,
retries with the same request id, ConfigUpdate statuses and RequestEntries streams.
``SubscriberProtocol`` adds the leader's state broadcasts and fills their gaps.  Both take
time as an argument and exchange plain frames; ``zmqraft.client`` wraps them in blocking,
gevent and asyncio APIs.

Modules: ``protocol`` (``ClientProtocol``, the driver and its retry rules), ``operations``
(one class per request and what its answers mean), ``entries_stream`` (RequestEntries
streams: flow control and resumption), ``events`` (what ``next_event`` returns), ``items``
(what callers get back), ``errors`` and ``subscriber``.  Import from this package.
"""

from __future__ import annotations

from .entries_stream import EntriesStream
from .errors import (
    BroadcastUrlMissingError,
    ClientClosedError,
    ClientError,
    ClusterBusyError,
    ConfigUpdateError,
    ConnectError,
    ExpiredRequestError,
    NotLeaderError,
    OutOfOrderError,
    RequestTimeoutError,
    ResumeState,
    UpdateTooLargeError,
)
from .events import Completed, Event, LeaderChanged, PeersChanged, Readable
from .items import ConfigInfo, Entry, Item, LogInfo, SnapshotChunk
from .operations import (
    BroadcastUrlOperation,
    ConfigOperation,
    ConfigUpdateOperation,
    CustomOperation,
    LogInfoOperation,
    Operation,
    Phase,
    UpdateOperation,
    WebmonitorUrlOperation,
)
from .protocol import DEFAULT_MAX_UPDATE_SIZE, ELECTION_GRACE_DELAY, RESPONSE_TIMEOUT, ClientProtocol
from .subscriber import (
    BROADCAST_TIMEOUT,
    BroadcastTimeout,
    ItemsReady,
    Pulse,
    Subscribe,
    SubscriberEvent,
    SubscriberProtocol,
)

__all__ = [
    "BROADCAST_TIMEOUT",
    "DEFAULT_MAX_UPDATE_SIZE",
    "ELECTION_GRACE_DELAY",
    "RESPONSE_TIMEOUT",
    "BroadcastTimeout",
    "BroadcastUrlMissingError",
    "BroadcastUrlOperation",
    "ClientClosedError",
    "ClientError",
    "ClientProtocol",
    "ClusterBusyError",
    "Completed",
    "ConfigInfo",
    "ConfigOperation",
    "ConfigUpdateError",
    "ConfigUpdateOperation",
    "ConnectError",
    "CustomOperation",
    "EntriesStream",
    "Entry",
    "Event",
    "ExpiredRequestError",
    "Item",
    "ItemsReady",
    "LeaderChanged",
    "LogInfo",
    "LogInfoOperation",
    "NotLeaderError",
    "Operation",
    "OutOfOrderError",
    "PeersChanged",
    "Phase",
    "Pulse",
    "Readable",
    "RequestTimeoutError",
    "ResumeState",
    "SnapshotChunk",
    "Subscribe",
    "SubscriberEvent",
    "SubscriberProtocol",
    "UpdateOperation",
    "UpdateTooLargeError",
    "WebmonitorUrlOperation",
]
