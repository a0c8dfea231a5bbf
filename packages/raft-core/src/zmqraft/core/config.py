"""Server options: the original's option table, merge rules and validation (spec
server-and-tools.md §b.1, §b.2, §b.4), without any I/O.

Three steps, in the order every command-line tool applies them:

1. ``select_namespace(document, ns)`` picks the mapping a config file holds under ``ns``
   (default ``"raft"``, ``""`` for the whole document, dotted paths for nesting);
2. ``create_options(user)`` deep-merges it with ``DEFAULTS``: a default that is a mapping is a
   namespace (the user's value must be a mapping too, merged recursively); any other default
   is used only when the user left the key out; unknown user keys are kept;
3. ``validate_options(options)`` rejects keys that are not in the option table ``OPTIONS``
   (with a "did you mean" hint; ``allowUnknownOptions: true`` accepts them), checks and
   normalises the values (integers are parsed
   leniently: numeric strings are accepted and truncated) and raises ``OptionsError`` naming
   the option.  ``raft_options`` then turns the timing options (milliseconds) into the core's
   ``RaftOptions`` (seconds).

Reading the config file itself (JSON, TOML, YAML, Hjson, a Python module) is the tools' job:
``zmqraft.core.config_files``.  Option keys keep the original's camelCase names, including
the misspelt ``requestEntriesHighWatermak``.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Option:
    """One row of the option table: a dotted ``key``, its ``default``, its ``unit`` (``""``
    when it has none) and what it does (one line, published in docs/options.md).

    ``filled``: merged into the options when the user leaves it out (False for options that
    are looked up with a fallback of their own, such as ``id`` or ``router.bind``).
    ``open``: a namespace whose keys are the user's (not checked for typos)."""

    key: str
    default: Any
    unit: str
    description: str
    filled: bool = True
    open: bool = False


NS: dict[str, Any] = {}  # the default of a namespace row: a mapping

#: THE option table: every server option, once.  Add a row to add an option (``DEFAULTS``,
#: the unknown-key check and docs/options.md are made from it); validate it in
#: ``validate_options``; regenerate the reference with
#: ``python -m zmqraft.core.option_reference > docs/options.md``.
OPTIONS: tuple[Option, ...] = (
    Option("id", None, "", "this peer's id (the command line's [id] overrides it)", filled=False),
    Option("label", None, "", "a name for this peer shown by the web monitor", filled=False),
    Option("secret", "", "", "the cluster's shared secret: the ident frame of every request"),
    Option(
        "peers",
        [{"id": "local", "url": "tcp://127.0.0.1:8047"}],
        "",
        "the seed configuration: [{id, url, pub?, www?}, ...] (also [id, url] or url)",
    ),
    Option(
        "allowUnknownOptions",
        False,
        "",
        "accept keys that are not in this table (for keys of your own in the file)",
        filled=False,
    ),
    Option("data", NS, "", "where the peer keeps its files"),
    Option("data.path", "raft", "", "the data directory"),
    Option("data.appendIdToPath", False, "", "use <data.path>/<id> (one config file for every peer)"),
    Option("data.raft", "raft.pers", "", "the Raft state file (term, vote, configuration), in data.path"),
    Option("data.log", "log", "", "the log directory, in data.path"),
    Option("data.snapshot", "snap", "", "the snapshot file, in data.path"),
    Option("data.state", "state.pers", "", "the state machine's file, in data.path"),
    Option("data.compact", NS, "", "log compaction (zr-log-compact's snapshots)"),
    Option(
        "data.compact.install", "compact/snap.new", "", "where zr-log-compact writes a snapshot, in data.path"
    ),
    Option(
        "data.compact.watch",
        False,
        "",
        "install a snapshot that appears at data.compact.install (without it none is installed)",
    ),
    Option(
        "data.compact.watchInterval",
        DEFAULT_COMPACT_WATCH_INTERVAL,
        "ms",
        "how often the install path is looked at",
        filled=False,
    ),
    Option("data.compact.state", NS, "", "zr-log-compact's state machine"),
    Option(
        "data.compact.state.path",
        None,
        "",
        "zr-log-compact's state machine: a .py file or module[:Class]",
        filled=False,
    ),
    Option(
        "data.compact.state.options",
        {"compressionLevel": 9},
        "",
        "options given to zr-log-compact's state machine",
        open=True,
    ),
    Option("router", NS, "", "the ROUTER socket that peers and clients talk to"),
    Option("router.bind", None, "", "its bind address (default: this peer's url)", filled=False),
    Option("broadcast", NS, "", "the broadcast state machine's PUB socket"),
    Option("broadcast.url", "tcp://127.0.0.1:8048", "", "its url as subscribers connect to it"),
    Option("broadcast.bind", None, "", "its bind address (default: broadcast.url)", filled=False),
    Option(
        "broadcast.broadcastHeartbeatInterval",
        DEFAULT_BROADCAST_HEARTBEAT,
        "ms",
        "the heartbeat period on the PUB socket",
        filled=False,
    ),
    Option("listeners", NS, "", "Python callables called on peer events (None: the runtime's)"),
    Option("listeners.error", None, "", "called with an error that closes the peer"),
    Option("listeners.config", None, "", "called when the configuration changes"),
    Option("listeners.state", None, "", "called when the role or term changes"),
    Option("listeners.close", None, "", "called when the peer has closed"),
    Option("factory", NS, "", "Python callables that make the peer's parts from the options"),
    Option("factory.persistence", None, "", "makes the raft.pers storage (None: RaftPersistence)"),
    Option("factory.log", None, "", "makes the log storage (None: FileLog)"),
    Option("factory.state", None, "", "makes the state machine (None: BroadcastStateMachine)"),
    Option("curve", NS, "", "CurveZMQ encryption and key authentication (off unless curve.keys is given)"),
    Option(
        "curve.keys",
        None,
        "",
        "a directory of zmq.auth certificates (zr-keys): this peer uses ID.key_secret and trusts "
        "every peer's ID.key (relative to the config file's folder)",
        filled=False,
    ),
    Option(
        "curve.clients",
        None,
        "",
        "the client keys allowed: a directory of NAME.key certificates, a list of Z85 public "
        'keys, or "*" for any key (default: peer keys only)',
        filled=False,
    ),
    Option("webmonitor", NS, "", "the web monitor (an HTTP page of the cluster, read-only)"),
    Option("webmonitor.enable", False, "", "serve the web monitor"),
    Option("webmonitor.host", "localhost", "", "the host name in its announced url"),
    Option("webmonitor.port", 8050, "", "the port in its announced url"),
    Option("webmonitor.proto", None, "", "the scheme of its announced url (default: bind.proto)"),
    Option("webmonitor.bind", NS, "", "where the web monitor listens"),
    Option("webmonitor.bind.proto", "http", "", "http or https (then bind.cert and bind.key)"),
    Option(
        "webmonitor.bind.host",
        "::",
        "",
        "the listening address: every interface by default (127.0.0.1: this host only)",
    ),
    Option("webmonitor.bind.port", None, "", "the listening port (default: webmonitor.port)"),
    Option("webmonitor.bind.cert", None, "", "https: the certificate (a PEM file)", filled=False),
    Option("webmonitor.bind.key", None, "", "https: the private key (a PEM file)", filled=False),
    Option("metrics", NS, "", "Prometheus metrics on a port of their own (the web monitor has /metrics too)"),
    Option("metrics.enable", False, "", "serve /metrics without the web monitor"),
    Option("metrics.host", "127.0.0.1", "", "the metrics server's listening address"),
    Option("metrics.port", 9464, "", "the metrics server's port"),
    Option("console", NS, "", "zr-console's settings"),
    Option("console.client", {"heartbeat": 5000}, "", "zr-console's client options", open=True),
    Option("console.subscriber", NS, "", "zr-console's subscriber options", open=True),
    Option("console.updateId", None, "", "random: a new request id for every flood update", filled=False),
    Option(
        "preventSpiralElections",
        True,
        "",
        "a candidate whose vote a majority has not answered keeps its term (no spiral of terms)",
    ),
    Option(
        "checkQuorum",
        True,
        "",
        "a leader without a timely reply from a majority steps down (docs/protocol-extensions.md)",
    ),
    Option(
        "preVote",
        False,
        "",
        "ask for pre-votes before campaigning (original peers never answer them: keep off with them)",
    ),
    Option("electionTimeoutMin", 200, "ms", "the shortest election timeout"),
    Option("electionTimeoutMax", 300, "ms", "the longest election timeout"),
    Option("rpcTimeout", 50, "ms", "the timeout of a RequestVote"),
    Option("appendEntriesHeartbeatInterval", 70, "ms", "the leader's heartbeat period"),
    Option("appendEntriesRpcTimeoutMin", 70, "ms", "the shortest AppendEntries timeout"),
    Option("appendEntriesRpcTimeoutMax", 140, "ms", "the longest AppendEntries timeout"),
    Option("maxLogEntryDataSize", 10 * 1024 * 1024, "bytes", "the largest update a client may send"),
    Option(
        "peerMsgDataSize",
        65536,
        "bytes",
        "the entries (or snapshot chunk) one AppendEntries or InstallSnapshot carries",
    ),
    Option(
        "requestEntriesHighWatermak",
        8000,
        "entries",
        "RequestEntries: entries sent before waiting for the client (sic: the original's name)",
    ),
    Option("requestEntriesTtl", 5000, "ms", "RequestEntries: how long an idle stream is kept"),
    Option("requestEntriesPipelines", 5, "", "RequestEntries: streams open at once per client"),
    Option(
        "requestEntriesEntrySizeLimitPipeline",
        65536,
        "bytes",
        "RequestEntries: entries larger than this are sent one per message",
    ),
    Option("requestEntriesSnapshotPipelines", 2, "", "RequestEntries: snapshot streams open at once"),
    Option("requestIdTtlAcceptMargin", 900_000, "ms", "how far in the future a request id's time may be"),
    Option(
        "requestIdTtl",
        28_800_000,
        "ms",
        "how long a request id is remembered (updates are applied at most once within it; "
        "the log is not compacted past it)",
    ),
    Option(
        "requestIdCacheMax",
        DEFAULT_CACHE_MAX,
        "ids",
        "the most request ids remembered (ids younger than 10 s are never dropped; null: no cap)",
    ),
    Option("indexFileCapacity", 16384, "entries", "entries per log file (a power of two)"),
)


def _defaults(options: tuple[Option, ...]) -> dict[str, Any]:
    """The nested mapping of every ``filled`` option's default (namespaces as mappings)."""
    root: dict[str, Any] = {}
    for option in options:
        *parents, name = option.key.split(".")
        node = root
        for part in parents:
            node = node[part]
        if option.default is NS:
            node[name] = {}
        elif option.filled:
            node[name] = copy.deepcopy(option.default)
    return root


#: every ``filled`` option's default, nested as the options are (made from ``OPTIONS``)
DEFAULTS: dict[str, Any] = _defaults(OPTIONS)
_KNOWN = {option.key: option for option in OPTIONS}
PEER_KEYS = ("id", "url", "pub", "www", "metrics")


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
        close = difflib.get_close_matches(ns, [str(k) for k in document], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise OptionsError(f"There is no such configuration namespace: {ns}{hint}")
    return dict(node)


def load_options(document: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """``create_options(select_namespace(document, namespace))``: what every tool starts with."""
    return create_options(select_namespace(document, namespace))


# ---- unknown keys ------------------------------------------------------------------------------


def _siblings(parent: str) -> list[str]:
    prefix = f"{parent}." if parent else ""
    return [k[len(prefix) :] for k in _KNOWN if k.startswith(prefix) and "." not in k[len(prefix) :]]


def _unknown(user: Mapping[str, Any], parent: str, found: list[str]) -> None:
    for key, value in user.items():
        full = f"{parent}.{key}" if parent else str(key)
        option = _KNOWN.get(full)
        if option is None:
            close = difflib.get_close_matches(str(key), _siblings(parent), n=1, cutoff=0.6)
            found.append(f"{full} (did you mean {close[0]}?)" if close else full)
        elif not option.open and isinstance(value, Mapping) and isinstance(option.default, Mapping):
            _unknown(value, full, found)
        elif full == "peers" and isinstance(value, list | tuple):
            for n, peer in enumerate(value):
                for peer_key in peer if isinstance(peer, Mapping) else ():
                    if peer_key not in PEER_KEYS:
                        close = difflib.get_close_matches(str(peer_key), PEER_KEYS, n=1, cutoff=0.6)
                        hint = f" (did you mean {close[0]}?)" if close else ""
                        found.append(f"peers[{n}].{peer_key}{hint}")


def unknown_options(options: Mapping[str, Any]) -> list[str]:
    """The keys of ``options`` that are not in ``OPTIONS`` (dotted, each with a "did you
    mean" hint when a known key is close); the keys of ``open`` namespaces are not looked at."""
    found: list[str] = []
    _unknown(options, "", found)
    return found


def check_known_options(options: Mapping[str, Any]) -> None:
    """Raise ``OptionsError`` naming every unknown key, unless ``allowUnknownOptions``."""
    if options.get("allowUnknownOptions"):
        return
    unknown = unknown_options(options)
    if unknown:
        what = "unknown option" if len(unknown) == 1 else "unknown options"
        raise OptionsError(f"{what} {', '.join(unknown)}; allowUnknownOptions: true accepts keys of your own")


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


def _check_curve(curve: dict[str, Any]) -> None:
    """The shape of the ``curve`` options (their files are read by ``curve_policy.load_curve``
    when the peer is assembled: this module does no I/O)."""
    keys = curve.get("keys")
    if keys is not None:
        _nonempty_str(keys, "curve.keys")
    clients = curve.get("clients")
    if clients is None or isinstance(clients, str):
        _optional_nonempty_str(clients, "curve.clients")
    elif not isinstance(clients, list | tuple) or not all(isinstance(k, str) for k in clients):
        raise OptionsError(
            f'curve.clients must be a directory, "*" or a list of Z85 public keys, got {clients!r}'
        )
    else:
        curve["clients"] = list(clients)
    if keys is None and clients is not None:
        raise OptionsError("curve.clients needs curve.keys (the peers' key pairs): curve is off without it")


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A checked copy of merged ``options`` with integers normalised and
    ``appendIdToPath`` applied to ``data.path``.  Raises ``OptionsError``."""
    opts = copy.copy(dict(options))
    check_known_options(opts)
    for ns in ("data", "router", "broadcast", "listeners", "factory", "webmonitor", "metrics", "curve"):
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

    _check_curve(opts["curve"])

    metrics = opts["metrics"]
    metrics["enable"] = bool(metrics.get("enable"))
    _nonempty_str(metrics.get("host"), "metrics.host")
    metrics["port"] = parse_int(metrics.get("port"), "metrics.port")
    if not 0 <= metrics["port"] <= 65535:
        raise OptionsError(f"metrics.port must be a port number (0-65535), got {metrics['port']}")

    for flag in ("preventSpiralElections", "checkQuorum", "preVote"):
        if not isinstance(opts.get(flag), bool):
            raise OptionsError(f"{flag} must be a boolean")
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
        check_quorum=bool(options["checkQuorum"]),
        pre_vote=bool(options["preVote"]),
    )
