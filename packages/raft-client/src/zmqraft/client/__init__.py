"""zmq-raft client, subscriber and operator tools (``zmqraft.client``).

::

    from zmqraft.client import Client, AsyncClient, Subscriber

    with Client(["tcp://127.0.0.1:8047"], secret="") as client:
        index = client.request_update(b"data")       # committed log index
        info = client.request_log_info()              # commit_index, last_applied, ...
        config = client.request_config()              # leader_id, peers
        for entry in client.request_entries(prev_index=0):
            print(entry.index, entry.data)

    with Subscriber(["tcp://127.0.0.1:8047"], from_index=0) as sub:
        for entry in sub:                             # every committed STATE entry, once
            ...

``Client`` blocks (and cooperates with gevent given a ``zmq.green`` context),
``AsyncClient`` is its asyncio twin, ``Subscriber`` works with ``for`` and ``async for``
and writes updates too.  ``PeerClient``/``AsyncPeerClient`` and ``PeerSubscriber`` talk to
one peer only, without fail-over (monitoring, tools, tests).  All are thin wrappers over
the sans-IO ``zmqraft.core.client`` protocols.
"""

from zmqraft.core.client import (
    BroadcastTimeout,
    BroadcastUrlMissingError,
    ClientClosedError,
    ClientError,
    ClusterBusyError,
    ConfigInfo,
    ConfigUpdateError,
    ConnectError,
    Entry,
    ExpiredRequestError,
    Item,
    LogInfo,
    NotLeaderError,
    OutOfOrderError,
    Pulse,
    RequestTimeoutError,
    ResumeState,
    SnapshotChunk,
    UpdateTooLargeError,
)
from zmqraft.core.protocol.entry import EntryType

from .client import AsyncClient, AsyncEntries, AsyncPeerClient, Client, Entries, PeerClient
from .subscriber import PeerSubscriber, Subscriber

__all__ = [
    "AsyncClient",
    "AsyncEntries",
    "AsyncPeerClient",
    "BroadcastTimeout",
    "BroadcastUrlMissingError",
    "Client",
    "ClientClosedError",
    "ClientError",
    "ClusterBusyError",
    "ConfigInfo",
    "ConfigUpdateError",
    "ConnectError",
    "Entries",
    "Entry",
    "EntryType",
    "ExpiredRequestError",
    "Item",
    "LogInfo",
    "NotLeaderError",
    "OutOfOrderError",
    "PeerClient",
    "PeerSubscriber",
    "Pulse",
    "RequestTimeoutError",
    "ResumeState",
    "SnapshotChunk",
    "Subscriber",
    "UpdateTooLargeError",
]
