"""What ``ClientProtocol.next_event()`` returns (spec/client.md §5).

A wrapper drains these after every ``receive``/``handle_timer`` and reacts: ``Completed``
wakes whoever waits on an operation's result, ``Readable`` whoever consumes an entries
stream, ``PeersChanged`` lets it close the DEALERs of URLs no request will use any more, and
``LeaderChanged`` is for logs and monitors.  Events only report decisions the protocol has
already made; a wrapper that ignores one loses nothing but the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .entries_stream import EntriesStream
    from .operations import Operation

Peer = tuple[str, str]
"""A peer as the cluster's configuration names it: ``(peer id, url)``."""


@dataclass(frozen=True, slots=True)
class Completed:
    """``operation`` finished: ``operation.result()`` returns or raises without blocking."""

    operation: Operation[Any]


@dataclass(frozen=True, slots=True)
class Readable:
    """``stream`` has items for ``take`` (or has ended)."""

    stream: EntriesStream


@dataclass(frozen=True, slots=True)
class PeersChanged:
    """The known configuration changed; ``urls`` are all the URLs requests may now go to
    (a wrapper may close connections to any other URL)."""

    peers: tuple[Peer, ...]
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    leader_id: str | None
    url: str | None


Event = Completed | Readable | PeersChanged | LeaderChanged


__all__ = [
    "Completed",
    "Event",
    "LeaderChanged",
    "Peer",
    "PeersChanged",
    "Readable",
]
