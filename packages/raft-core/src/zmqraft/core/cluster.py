"""Cluster configurations: peers, joint (old, new) configurations and their voter groups.

CONTRACT (the Raft node relies on these names):

    Peer = tuple[str, str]                      # (peer_id, url)

    class ConfigError(ValueError):              # carries the original's error class name
        name: str                               # "TypeError" | "Error" | "AssertionError"
        message: str

    @dataclass(frozen=True, slots=True)
    class ClusterConfig:
        old: tuple[Peer, ...]
        new: tuple[Peer, ...] | None = None     # not None and non-empty => joint

        is_joint -> bool (property)
        ids -> frozenset[str]                   # union of old and new ids (property)
        urls -> dict[str, str]                  # id -> url over the union (property)
        peers_union() -> tuple[Peer, ...]       # old first, then new-only peers (RequestConfig)
        is_member(peer_id) -> bool
        others(self_id) -> tuple[Peer, ...]     # union minus self
        voters -> tuple[frozenset[str], ...]    # (old ids,), or (old ids, new ids) while joint:
                                                # the groups every decision needs a majority
                                                # of (the counting is in raft/quorum.py)
        to_json() -> list | dict                # [[id,url],...] or {"old": [...], "new": [...]}
        from_json(value) -> ClusterConfig       # classmethod; ids and urls must be strings;
                                                # raises ConfigError on bad shape
        from_entry_data(data: bytes) -> ClusterConfig   # classmethod; msgpack of to_json()
        to_entry_data() -> bytes                # msgpack, original dialect, key order old,new
        join(requested: Any) -> ClusterConfig   # validate a ConfigUpdate's peer list against
                                                # self (final config) and return the joint
                                                # {old: self.old, new: parsed}; raises
                                                # ConfigError with the spec's names/messages
                                                # (protocol.md §9.4); ConfigBusyError if self
                                                # is already joint (reply BUSY, status 3)
        final() -> ClusterConfig                # ClusterConfig(old=self.new) of a joint config

    parse_peers(value: Any, current=None) -> tuple[Peer, ...]
                                                # [id,url] pairs, "url" strings, {id,url} maps;
                                                # URL rules of protocol.md §5; with `current`
                                                # also the consistency rule of §9.4

Validation follows the original peer-list parser (protocol.md §5, §9.4): each element in turn
is checked for id (non-empty string, unique), url (format, unique) and, when joining, for
consistency with the current configuration; the first failure is reported, with the JS error
class name the original puts on the wire ("TypeError" / "Error" / "AssertionError").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .protocol import mpack

Peer: TypeAlias = tuple[str, str]

MSG_NOT_ARRAY = "peers must be an array"
MSG_NO_CHANGE = "no change in cluster membership"
MSG_BAD_PEER = "peer must be an url string or a tuple [id, url] or an object with 'url' and 'id' properties"
MSG_ID_EMPTY = "peer id must be a non empty string"
MSG_ID_UNIQUE = "peer id must be unique"
MSG_URL_UNIQUE = "peer url must be unique"
MSG_INCONSISTENT = "new peers must be consistent with current configuration"
MSG_NO_PEERS = "at least one peer must be defined in a cluster"
MSG_BAD_CONFIG = "ClusterConfiguration: argument parsing error"
MSG_URL_EMPTY = "peer url must be a non empty string"
MSG_URL_PROTOCOL = "peer url protocol must be tcp:"
MSG_URL_AUTH = "peer url must have no auth"
MSG_URL_PATH = "peer url must have no path"
MSG_URL_HASH = "peer url must have no hash"
MSG_URL_PORT = "peer url port must be in range 1-65535"
MSG_URL_PLACEHOLDER = "peer url must not be a placeholder address"
MSG_URL_IP = "peer url must have a valid ip address in hostname"


class ConfigError(ValueError):
    """A rejected configuration; ``name``/``message`` go verbatim into ConfigUpdate status 2."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message

    def to_json(self) -> dict[str, str]:
        """The ``{name, message}`` map of the status 2 reply (key order matters on the wire)."""
        return {"name": self.name, "message": self.message}


class ConfigBusyError(Exception):
    """``join`` on a configuration that is already joint: a change is in progress (status 3).

    Deliberately not a ConfigError, so that ``except ConfigError`` (status 2) can't swallow it.
    """


def _assert(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError("AssertionError", message)


def validate_peer_url(url: object) -> str:
    """``tcp://<IPv4 | [IPv6]>:<1..65535>`` and nothing else (no auth, path, query, hash).

    Checks run in the original's order so a URL with several faults reports the same one.
    """
    _assert(isinstance(url, str) and len(url) != 0, MSG_URL_EMPTY)
    assert isinstance(url, str)
    scheme, colon, rest = url.partition(":")
    _assert(colon == ":" and scheme.lower() == "tcp", MSG_URL_PROTOCOL)
    if not rest.startswith("//"):
        raise ConfigError("AssertionError", MSG_URL_PATH if rest else MSG_URL_PORT)
    rest = rest[2:]
    end = len(rest)
    for stop in "/?#":
        pos = rest.find(stop)
        if pos != -1 and pos < end:
            end = pos
    authority, tail = rest[:end], rest[end:]
    _assert("@" not in authority, MSG_URL_AUTH)
    _assert(not tail or tail[0] == "#", MSG_URL_PATH)
    _assert(not tail, MSG_URL_HASH)
    if authority.startswith("["):
        close = authority.find("]")
        host = authority[1:close] if close != -1 else authority[1:]
        after = authority[close + 1 :] if close != -1 else ""
        port_text = after[1:] if after.startswith(":") else ""
        bracketed = close != -1 and (after == "" or after.startswith(":"))
    else:
        host, _, port_text = authority.rpartition(":")
        if not _:
            host, port_text = authority, ""
        bracketed = False
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else 0
    _assert(0 < port < 0x10000, MSG_URL_PORT)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.IPv6Address(host) if bracketed else ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    _assert(address is None or not address.is_unspecified, MSG_URL_PLACEHOLDER)
    _assert(address is not None, MSG_URL_IP)
    return url


_MISSING: Any = object()


def _peer_fields(peer: Any) -> tuple[Any, Any]:
    """(id, url) of one list element in any of the three accepted shapes."""
    if isinstance(peer, str):
        return peer, peer
    if isinstance(peer, list | tuple):
        peer_id = peer[0] if len(peer) > 0 else _MISSING
        url = peer[1] if len(peer) > 1 else peer_id
        return peer_id, url
    if isinstance(peer, dict):
        peer_id = peer.get("id", _MISSING)
        if peer_id is _MISSING:
            peer_id = peer.get("url", _MISSING)
        url = peer.get("url", _MISSING)
        if url is _MISSING:
            url = peer_id
        return peer_id, url
    if peer is None or isinstance(peer, bool | int | float):
        raise ConfigError("AssertionError", MSG_BAD_PEER)
    # bytes and other msgpack objects: an object without id/url properties in the original
    return _MISSING, _MISSING


def parse_peers(value: Any, current: Iterable[Peer] | None = None) -> tuple[Peer, ...]:
    """Validate a peer list (§5); with ``current``, also require consistency with it (§9.4).

    Consistency: a peer is either unknown by id *and* by url, or has exactly its current url.
    """
    if not isinstance(value, list | tuple):
        raise ConfigError("TypeError", MSG_NOT_ARRAY)
    known: dict[str, str] | None = None if current is None else dict(current)
    known_urls = set() if known is None else set(known.values())
    result: dict[str, str] = {}
    urls: set[str] = set()
    for peer in value:
        peer_id, url = _peer_fields(peer)
        _assert(isinstance(peer_id, str) and len(peer_id) != 0, MSG_ID_EMPTY)
        _assert(peer_id not in result, MSG_ID_UNIQUE)
        validate_peer_url(url)
        _assert(url not in urls, MSG_URL_UNIQUE)
        if known is not None:
            _assert(
                (peer_id not in known and url not in known_urls) or known.get(peer_id) == url,
                MSG_INCONSISTENT,
            )
        urls.add(url)
        result[peer_id] = url
    _assert(len(result) != 0, MSG_NO_PEERS)
    return tuple(result.items())


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """An immutable configuration; joint while ``new`` is set (joint consensus, raft.md §9)."""

    old: tuple[Peer, ...]
    new: tuple[Peer, ...] | None = None
    # derived, computed once: membership tests are on the election and commit hot paths
    _old_ids: frozenset[str] = field(init=False, repr=False, compare=False)
    _new_ids: frozenset[str] = field(init=False, repr=False, compare=False)
    _union: tuple[Peer, ...] = field(init=False, repr=False, compare=False)
    _voters: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # accept lists from callers but store tuples so the object stays hashable;
        # an empty ``new`` is the same thing as no ``new`` (not joint)
        old = tuple((p[0], p[1]) for p in self.old)
        new = None if not self.new else tuple((p[0], p[1]) for p in self.new)
        object.__setattr__(self, "old", old)
        object.__setattr__(self, "new", new)
        merged = dict(old)
        if new is not None:
            merged.update(new)  # like the original's map merge: old order, then new-only ids
        object.__setattr__(self, "_old_ids", frozenset(p[0] for p in old))
        object.__setattr__(self, "_new_ids", frozenset(p[0] for p in new) if new else frozenset())
        object.__setattr__(self, "_union", tuple(merged.items()))
        voters = (self._old_ids,) if new is None else (self._old_ids, self._new_ids)
        object.__setattr__(self, "_voters", voters)

    @property
    def is_joint(self) -> bool:
        return self.new is not None

    @property
    def ids(self) -> frozenset[str]:
        return self._old_ids | self._new_ids

    @property
    def urls(self) -> dict[str, str]:
        return dict(self._union)

    def peers_union(self) -> tuple[Peer, ...]:
        """What RequestConfig reports: old first, then new-only peers."""
        return self._union

    def is_member(self, peer_id: str) -> bool:
        return peer_id in self._old_ids or peer_id in self._new_ids

    def others(self, self_id: str) -> tuple[Peer, ...]:
        """The peers to talk to: the union minus ourselves."""
        return tuple(p for p in self._union if p[0] != self_id)

    @property
    def voters(self) -> tuple[frozenset[str], ...]:
        """The groups whose majorities every decision needs: old, and new while joint
        (raft/quorum.py does the counting)."""
        return self._voters

    def to_json(self) -> list[list[str]] | dict[str, list[list[str]]]:
        """The persisted / CONFIG-entry form: a peer list, or ``{"old", "new"}`` in that order."""
        old = [[peer_id, url] for peer_id, url in self.old]
        if self.new is None:
            return old
        return {"old": old, "new": [[peer_id, url] for peer_id, url in self.new]}

    @classmethod
    def from_json(cls, value: Any) -> ClusterConfig:
        """Inverse of ``to_json``; validates like the original (new must agree with old)."""
        if isinstance(value, list | tuple):
            return cls(parse_peers(value))
        if not (isinstance(value, dict) and isinstance(value.get("old"), list | tuple)):
            raise ConfigError("TypeError", MSG_BAD_CONFIG)
        if not isinstance(value.get("new"), list | tuple):
            raise ConfigError("TypeError", MSG_BAD_CONFIG)
        old = parse_peers(value["old"])
        return cls(old, parse_peers(value["new"], old))

    @classmethod
    def from_entry_data(cls, data: bytes | memoryview) -> ClusterConfig:
        """Decode the data of a CONFIG log entry."""
        try:
            value = mpack.unpack(data)
        except Exception as exc:  # any malformed msgpack
            raise ConfigError("Error", f"invalid configuration data: {exc}") from None
        return cls.from_json(value)

    def to_entry_data(self) -> bytes:
        """The data of a CONFIG log entry, byte-identical to the original's."""
        return mpack.pack(self.to_json())

    def join(self, requested: Any) -> ClusterConfig:
        """The joint configuration a ConfigUpdate asks for: ``{old: self.old, new: requested}``.

        Raises ConfigBusyError if self is already joint, ConfigError if ``requested`` is
        malformed, conflicts with the current configuration or changes nothing (same ids in
        the same order; a reordering counts as a change).
        """
        if self.new is not None:
            raise ConfigBusyError("cluster configuration is already joint")
        new = parse_peers(requested, self.old)
        if [p[0] for p in new] == [p[0] for p in self.old]:
            raise ConfigError("Error", MSG_NO_CHANGE)
        return ClusterConfig(self.old, new)

    def final(self) -> ClusterConfig:
        """C(new) of a joint configuration."""
        if self.new is None:
            raise ValueError("not a joint configuration")
        return ClusterConfig(self.new)

    def __str__(self) -> str:
        old = ",".join(p[0] for p in self.old)
        if self.new is None:
            return f"ClusterConfig([{old}])"
        return f"ClusterConfig(old=[{old}] new=[{','.join(p[0] for p in self.new)}])"
