"""Assemble one peer from options (spec server-and-tools.md §b.3), for every runtime.

``assemble(options, now=..., wall=...)`` merges and validates the options, creates the data
directory, calls the three factories in the original's order (persistence, log, state
machine), applies the start-up fix-ups and constructs the ``PeerServer``.  A runtime then only
opens the sockets (``AssembledPeer.router_bind``, the state machine's ``broadcast_bind``, one
DEALER per ``server.node.config.others(id)``) and drives the server.

Factories (``factory.persistence``, ``factory.log``, ``factory.state`` in the options) are
called with the validated options and return a ``StateStorage`` with ``load``/``update``
(raft.pers), a ``LogStorage`` and a ``StateMachine``; ``None`` selects the default:
``RaftPersistence``, ``FileLog`` and ``BroadcastStateMachine`` on the builder's file names.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import OptionsError, create_options, raft_options, seed_peers, validate_options
from .curve_policy import CurveSetup, load_curve
from .raft.options import RaftOptions
from .server import PeerServer, hard_state_from
from .statemachine import BroadcastStateMachine, StateMachine
from .storage.base import LogStorage, StateStorage
from .storage.files import FileLog, RaftPersistence, StateMachinePersistence
from .storage.files.fsutil import mkdir_p

log = logging.getLogger("zmqraft.builder")


def data_file(options: Mapping[str, Any], key: str) -> str:
    """Absolute path of ``data.<key>`` (a name relative to ``data.path``)."""
    data = options["data"]
    return os.path.abspath(os.path.join(str(data["path"]), str(data[key])))


def install_path(options: Mapping[str, Any]) -> str:
    data = options["data"]
    return os.path.abspath(os.path.join(str(data["path"]), str(data["compact"]["install"])))


def default_persistence(options: Mapping[str, Any]) -> RaftPersistence:
    return RaftPersistence(data_file(options, "raft"), seed_peers(options))


def default_log(options: Mapping[str, Any]) -> FileLog:
    return FileLog(
        data_file(options, "log"),
        data_file(options, "snapshot"),
        index_file_capacity=int(options["indexFileCapacity"]),
        install_path=install_path(options),
    )


def default_state_machine(options: Mapping[str, Any]) -> BroadcastStateMachine:
    broadcast = options["broadcast"]
    return BroadcastStateMachine(
        StateMachinePersistence(data_file(options, "state")),
        broadcast["url"],
        bind_url=broadcast.get("bind"),
        broadcast_heartbeat_interval=int(broadcast["broadcastHeartbeatInterval"]) / 1000.0,
    )


@dataclass(slots=True)
class AssembledPeer:
    options: dict[str, Any]
    raft_options: RaftOptions
    persistence: StateStorage
    log: LogStorage
    state_machine: StateMachine
    server: PeerServer
    #: CurveZMQ keys (``curve`` options; None: curve off, plaintext as the original)
    curve: CurveSetup | None = None

    @property
    def id(self) -> str:
        return self.server.id

    @property
    def url(self) -> str | None:
        """This peer's url in its current configuration (None while not a member)."""
        return self.server.node.config.urls.get(self.id)

    @property
    def others(self) -> dict[str, str]:
        """The other peers of the current configuration: peer id -> url."""
        return dict(self.server.node.config.others(self.id))

    @property
    def secret(self) -> bytes:
        """The cluster's shared secret (the ident frame of every request)."""
        return str(self.options.get("secret") or "").encode()

    @property
    def dealer_hwm(self) -> int:
        """The send queue of a DEALER to another peer.  The original sends one RPC at a time
        (SNDHWM 1); the core pipelines up to ``max_inflight_messages`` AppendEntries per
        follower, so the DEALER must hold that many (one over the limit is dropped and
        retransmitted by the core)."""
        return self.raft_options.max_inflight_messages + 2

    @property
    def router_bind(self) -> str:
        bind = self.options["router"].get("bind") or self.url
        if not bind:
            raise ValueError(
                f"peer {self.id!r} is not in its cluster configuration: give router.bind (--bind)"
            )
        return str(bind)

    @property
    def install_path(self) -> str | None:
        return install_path(self.options) if self.options["data"]["compact"]["watch"] else None

    def close(self) -> None:
        """Close the state machine, the log and the persistence (in reverse order of opening).

        Each is closed even if an earlier one fails (a full disk fails the state machine's
        last flush); a failure is logged in one line and the first is raised at the end."""
        first: Exception | None = None
        for closing in (self.state_machine.close, self.log.close, getattr(self.persistence, "close", None)):
            if closing is None:
                continue
            try:
                closing()
            except Exception as exc:
                log.error("%s: closing failed: %s: %s", self.id, type(exc).__name__, exc)
                first = first or exc
        if first is not None:
            raise first


def check_peer_id(options: Mapping[str, Any]) -> None:
    """Refuse an id that is not one of ``peers`` before anything is written: such a peer can
    start only as a new peer (``router.bind``: it waits to be added with zr-config) or from
    its files of an earlier run (its raft.pers holds the configuration it was added to)."""
    if options["factory"].get("persistence") is not None or options["router"].get("bind"):
        return
    ids = [peer_id for peer_id, _ in seed_peers(options)]
    if str(options["id"]) in ids or os.path.exists(data_file(options, "raft")):
        return
    raise OptionsError(
        f"unknown peer id {options['id']!r}: the peers are {', '.join(map(repr, ids))} "
        "(give one of them, or router.bind (--bind URL) to start a new peer that zr-config adds later)"
    )


def _factory(options: Mapping[str, Any], name: str, default: Callable[[Mapping[str, Any]], Any]) -> Any:
    chosen = options["factory"].get(name)
    return (chosen or default)(options)


def assemble(
    user_options: Mapping[str, Any],
    *,
    now: float,
    wall: float,
    rng: random.Random | None = None,
) -> AssembledPeer:
    """Everything of a peer but its sockets (see the module docstring).  Raises
    ``OptionsError``/``TypeError`` for bad options, ``StorageError`` for bad files and
    ``ValueError`` when a start-up check of the node fails; nothing is left open then."""
    options = validate_options(create_options(user_options))
    check_peer_id(options)
    curve = load_curve(options)  # its key files are checked before anything is written
    mkdir_p(options["data"]["path"])
    opened: list[Callable[[], None]] = []
    try:
        persistence: StateStorage = _factory(options, "persistence", default_persistence)
        opened.append(getattr(persistence, "close", lambda: None))
        log: LogStorage = _factory(options, "log", default_log)
        opened.append(log.close)
        machine: StateMachine = _factory(options, "state", default_state_machine)
        opened.append(machine.close)
        opts = raft_options(options)
        hard = hard_state_from(dict(persistence.load()))
        if hard.config_request is not None and hard.config_index is None:
            # the leader stopped between writing a configuration and its log index (§b.3 step 4)
            ttl = None if opts.request_id_ttl is None else int(opts.request_id_ttl * 1000)
            found = log.request_ids(int(wall * 1000), ttl, opts.request_id_cache_max)
            index = next((i for rid, i in reversed(found) if rid == hard.config_request), None)
            if index is not None:
                persistence.update({"peersIndex": index})
                hard.config_index = index
        server = PeerServer(
            str(options["id"]),
            log,
            hard,
            now=now,
            wall=wall,
            options=opts,
            rng=rng,
            secret=str(options["secret"]).encode(),
            last_applied=machine.last_applied,
            broadcast=machine.broadcast_bind is not None,
            broadcast_heartbeat_interval=machine.broadcast_heartbeat_interval,
        )
    except BaseException:
        for closing in reversed(opened):
            closing()
        raise
    if curve is not None:
        server.refuse_config(curve.refuse_config)
    return AssembledPeer(options, opts, persistence, log, machine, server, curve)


__all__ = [
    "AssembledPeer",
    "assemble",
    "data_file",
    "default_log",
    "default_persistence",
    "default_state_machine",
    "install_path",
]
