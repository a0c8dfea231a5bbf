"""Server options: the original's option table, merge rules and validation (spec
server-and-tools.md §b.1, §b.2, §b.4), without any I/O.

Three steps, in the order every command-line tool applies them:

1. ``select_namespace(document, ns)`` picks the mapping a config file holds under ``ns``
   (default ``"raft"``, ``""`` for the whole document, dotted paths for nesting);
2. ``create_options(user)`` deep-merges it with ``DEFAULTS``: a default that is a mapping is a
   namespace (the user's value must be a mapping too, merged recursively); any other default
   is used only when the user left the key out; unknown user keys are kept;
3. ``validate_options(options)`` checks and normalises the values (integers are parsed
   leniently: numeric strings are accepted and truncated) and raises ``OptionsError`` naming
   the option.  ``raft_options`` then turns the timing options (milliseconds) into the core's
   ``RaftOptions`` (seconds).

Reading the config file itself (JSON, TOML, YAML, Hjson, a Python module) is the tools' job:
``zmqraft.core.config_files``.  Option keys keep the original's camelCase names, including
the misspelt ``requestEntriesHighWatermak``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from .cluster import ConfigError, parse_peers
from .raft.options import RaftOptions
from .request_ids import DEFAULT_CACHE_MAX

DEFAULT_NAMESPACE = "raft"
MAX_INDEX_FILE_CAPACITY = 0x00FFFFFF
REQUEST_ID_TTL_MIN = 60_000
REQUEST_ID_TTL_MAX = 788_400_000_000  # 25 years
DEFAULT_BROADCAST_HEARTBEAT = 500
DEFAULT_COMPACT_WATCH_INTERVAL = 10_000  # the original's watcher cool-down (ms)


class OptionsError(ValueError):
    """An option has a value the server cannot start with (the message names it)."""


DEFAULTS: dict[str, Any] = {
    "secret": "",
    "peers": [{"id": "local", "url": "tcp://127.0.0.1:8047"}],
    "data": {
        "path": "raft",
        "appendIdToPath": False,
        "raft": "raft.pers",
        "log": "log",
        "snapshot": "snap",
        "state": "state.pers",
        "compact": {
            "install": "compact/snap.new",
            "watch": False,
            "state": {"options": {"compressionLevel": 9}},
        },
    },
    "router": {},
    "broadcast": {"url": "tcp://127.0.0.1:8048"},
    # the original's defaults are functions; a runtime fills in its own for None
    "listeners": {"error": None, "config": None, "state": None, "close": None},
    "factory": {"persistence": None, "log": None, "state": None},
    "webmonitor": {
        "enable": False,
        "host": "localhost",
        "port": 8050,
        "proto": None,
        "bind": {"proto": "http", "host": "::", "port": None},
    },
    # the Prometheus endpoint on a port of its own (the web monitor serves /metrics too)
    "metrics": {"enable": False, "host": "127.0.0.1", "port": 9464},
    "console": {"client": {"heartbeat": 5000}, "subscriber": {}},
    "preventSpiralElections": True,
    "electionTimeoutMin": 200,
    "electionTimeoutMax": 300,
    "rpcTimeout": 50,
    "appendEntriesHeartbeatInterval": 70,
    "appendEntriesRpcTimeoutMin": 70,
    "appendEntriesRpcTimeoutMax": 140,
    "maxLogEntryDataSize": 10 * 1024 * 1024,
    "peerMsgDataSize": 65536,
    "requestEntriesHighWatermak": 8000,
    "requestEntriesTtl": 5000,
    "requestEntriesPipelines": 5,
    "requestEntriesEntrySizeLimitPipeline": 65536,
    "requestEntriesSnapshotPipelines": 2,
    "requestIdTtlAcceptMargin": 900_000,
    "requestIdTtl": 28_800_000,
    "requestIdCacheMax": DEFAULT_CACHE_MAX,
    "indexFileCapacity": 16384,
}


# ---- merging (§b.1) and namespaces (§b.4) ---------------------------------------------------


def create_options(
    user: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] = DEFAULTS
) -> dict[str, Any]:
    """``user`` deep-merged over ``defaults`` (neither is modified).

    Raises ``TypeError("Expected a namespace: <key>")`` when the user gives a non-mapping
    where the default is a mapping (``None`` included: it is the original's ``null``)."""
    merged: dict[str, Any] = dict(user or {})
    for key, default in defaults.items():
        if isinstance(default, Mapping):
            if key not in merged:
                merged[key] = create_options({}, default)
            elif isinstance(merged[key], Mapping):
                merged[key] = create_options(merged[key], default)
            else:
                raise TypeError(f"Expected a namespace: {key}")
        elif key not in merged:
            merged[key] = copy.deepcopy(default)
    return merged


def select_namespace(document: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """The mapping under ``namespace`` (``None``: ``"raft"``; ``""``: the whole document; a
    dotted path such as ``"other.cfg"`` descends into nested mappings)."""
    ns = DEFAULT_NAMESPACE if namespace is None else namespace
    if ns == "":
        node: Any = document
    else:
        node = document
        for part in ns.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise OptionsError(f"There is no such configuration namespace: {ns}")
    return dict(node)


def load_options(document: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """``create_options(select_namespace(document, namespace))``: what every tool starts with."""
    return create_options(select_namespace(document, namespace))


# ---- lenient values ---------------------------------------------------------------------------


def parse_int(value: Any, name: str) -> int:
    """An integer option: ints, finite floats and numeric strings (truncated toward zero)."""
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 10)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise OptionsError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise OptionsError(f"{name} must be an integer, got {value!r}")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise OptionsError(f"{name} must be an integer, got {value!r}")
        number = int(number)
    return int(number)


def _int_in(options: dict[str, Any], name: str, low: int | None = None, high: int | None = None) -> int:
    value = parse_int(options.get(name), name)
    if low is not None and value < low:
        raise OptionsError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise OptionsError(f"{name} must be <= {high}, got {value}")
    options[name] = value
    return value


def _nonempty_str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise OptionsError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _optional_nonempty_str(value: Any, name: str) -> str | None:
    return None if value is None else _nonempty_str(value, name)


# ---- validation (§b.2, §b.3 step 1) ------------------------------------------------------------


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A checked copy of merged ``options`` with integers normalised and
    ``appendIdToPath`` applied to ``data.path``.  Raises ``OptionsError``."""
    opts = copy.copy(dict(options))
    for ns in ("data", "router", "broadcast", "listeners", "factory", "webmonitor", "metrics"):
        if not isinstance(opts.get(ns), Mapping):
            raise OptionsError(f"Expected a namespace: {ns}")
        opts[ns] = dict(opts[ns])
    peer_id = _nonempty_str(opts.get("id"), "id")
    if not isinstance(opts.get("secret"), str):
        raise OptionsError(f"secret must be a string, got {opts.get('secret')!r}")
    _optional_nonempty_str(opts.get("label"), "label")
    peers = opts.get("peers")
    if not isinstance(peers, list | tuple) or not peers:
        raise OptionsError("peers must be a non-empty array")
    try:
        parse_peers(list(peers))
    except ConfigError as err:
        raise OptionsError(f"peers: {err.message}") from None

    data = opts["data"]
    path = _nonempty_str(data.get("path"), "data.path")
    if data.get("appendIdToPath"):
        data["path"] = f"{path.rstrip('/') or ''}/{peer_id}"
        data["appendIdToPath"] = False  # applied: validating again changes nothing
    for key in ("raft", "log", "snapshot", "state"):
        _nonempty_str(data.get(key), f"data.{key}")
    compact = dict(data.get("compact") or {})
    _nonempty_str(compact.get("install"), "data.compact.install")
    compact["watch"] = bool(compact.get("watch"))
    compact["watchInterval"] = parse_int(
        compact.get("watchInterval", DEFAULT_COMPACT_WATCH_INTERVAL), "data.compact.watchInterval"
    )
    if compact["watchInterval"] < 10:
        raise OptionsError("data.compact.watchInterval must be >= 10")
    data["compact"] = compact

    _optional_nonempty_str(opts["router"].get("bind"), "router.bind")
    broadcast = opts["broadcast"]
    _nonempty_str(broadcast.get("url"), "broadcast.url")
    _optional_nonempty_str(broadcast.get("bind"), "broadcast.bind")
    interval = broadcast.get("broadcastHeartbeatInterval")
    interval = (
        DEFAULT_BROADCAST_HEARTBEAT
        if interval is None
        else parse_int(interval, "broadcast.broadcastHeartbeatInterval")
    )
    if interval < 50:
        raise OptionsError(f"broadcast.broadcastHeartbeatInterval must be >= 50, got {interval}")
    broadcast["broadcastHeartbeatInterval"] = interval

    metrics = opts["metrics"]
    metrics["enable"] = bool(metrics.get("enable"))
    _nonempty_str(metrics.get("host"), "metrics.host")
    metrics["port"] = parse_int(metrics.get("port"), "metrics.port")
    if not 0 <= metrics["port"] <= 65535:
        raise OptionsError(f"metrics.port must be a port number (0-65535), got {metrics['port']}")

    if not isinstance(opts.get("preventSpiralElections"), bool):
        raise OptionsError("preventSpiralElections must be a boolean")
    low = _int_in(opts, "electionTimeoutMin", 100)
    _int_in(opts, "electionTimeoutMax", low)
    rpc = _int_in(opts, "rpcTimeout", 10, low)
    _int_in(opts, "appendEntriesHeartbeatInterval", rpc, low)
    ae_min = _int_in(opts, "appendEntriesRpcTimeoutMin", rpc, low)
    _int_in(opts, "appendEntriesRpcTimeoutMax", ae_min, low)
    _int_in(opts, "maxLogEntryDataSize", 0)
    _int_in(opts, "peerMsgDataSize", 64)
    _int_in(opts, "requestEntriesHighWatermak", 0)
    _int_in(opts, "requestEntriesTtl", 100)
    _int_in(opts, "requestEntriesPipelines", 1, 50)
    _int_in(opts, "requestEntriesEntrySizeLimitPipeline", 1)
    _int_in(opts, "requestEntriesSnapshotPipelines", 1, 50)
    _int_in(opts, "requestIdTtlAcceptMargin", 1000)
    if opts.get("requestIdTtl") is not None:
        _int_in(opts, "requestIdTtl", REQUEST_ID_TTL_MIN, REQUEST_ID_TTL_MAX)
    if opts.get("requestIdCacheMax") is not None:
        _int_in(opts, "requestIdCacheMax", 1)
    if opts.get("requestIdTtl") is None and opts.get("requestIdCacheMax") is None:
        raise OptionsError("requestIdTtl and requestIdCacheMax must not both be null")
    capacity = _int_in(opts, "indexFileCapacity", 1, MAX_INDEX_FILE_CAPACITY)
    if capacity & (capacity - 1):
        raise OptionsError(f"indexFileCapacity must be a power of two, got {capacity}")
    return opts


def seed_peers(options: Mapping[str, Any]) -> list[list[str]]:
    """The validated ``peers`` option as ``[[id, url], ...]`` (extra keys such as ``pub``
    and ``www`` dropped): the seed configuration written to raft.pers."""
    try:
        return [[peer_id, url] for peer_id, url in parse_peers(list(options["peers"]))]
    except ConfigError as err:
        raise OptionsError(f"peers: {err.message}") from None


def peer_entry(options: Mapping[str, Any], peer_id: str) -> Mapping[str, Any] | None:
    """The ``{id, url, pub?, www?}`` mapping of ``peer_id`` in ``peers``, if given as one."""
    for peer in options.get("peers") or ():
        if isinstance(peer, Mapping) and peer.get("id") == peer_id:
            return peer
    return None


def raft_options(options: Mapping[str, Any]) -> RaftOptions:
    """The core's ``RaftOptions`` (seconds) from validated options (milliseconds)."""

    def s(key: str) -> float:
        return int(options[key]) / 1000.0

    ttl = options.get("requestIdTtl")
    cache_max = options.get("requestIdCacheMax")
    return RaftOptions(
        election_timeout_min=s("electionTimeoutMin"),
        election_timeout_max=s("electionTimeoutMax"),
        rpc_timeout=s("rpcTimeout"),
        append_entries_heartbeat_interval=s("appendEntriesHeartbeatInterval"),
        append_entries_rpc_timeout_min=s("appendEntriesRpcTimeoutMin"),
        append_entries_rpc_timeout_max=s("appendEntriesRpcTimeoutMax"),
        peer_msg_data_size=int(options["peerMsgDataSize"]),
        max_log_entry_data_size=int(options["maxLogEntryDataSize"]),
        request_id_ttl=None if ttl is None else int(ttl) / 1000.0,
        request_id_ttl_accept_margin=s("requestIdTtlAcceptMargin"),
        request_id_cache_max=None if cache_max is None else int(cache_max),
        request_entries_high_watermark=int(options["requestEntriesHighWatermak"]),
        request_entries_ttl=s("requestEntriesTtl"),
        request_entries_pipelines=int(options["requestEntriesPipelines"]),
        request_entries_entry_size_limit_pipeline=int(options["requestEntriesEntrySizeLimitPipeline"]),
        request_entries_snapshot_pipelines=int(options["requestEntriesSnapshotPipelines"]),
        prevent_spiral_elections=bool(options["preventSpiralElections"]),
    )
