"""CurveZMQ for a peer: its keys (from the ``curve`` options) and who may do what.

Two decisions, both here so that both runtimes apply the same rules:

* who may connect at all: ``CurvePolicy.authorize`` answers a ZAP request (RFC 27) that
  libzmq makes for every CURVE handshake on the peer's ROUTER and PUB.  A configured peer's
  key gets the User-Id ``peer:ID``, an allowed client key ``client``; any other key is
  refused (status 400), logged once per key with its Z85 public key and address, and counted;
* what a connection may send: ``may_deliver(user_id, msg_type, sender)``: only peer keys
  may send the peer RPCs (AppendEntries, RequestVote, PreVote, InstallSnapshot), each only
  in its own name, so a client key cannot disturb elections or the log, nor one peer's key
  speak for another peer.

The runtimes own the sockets (``zmqraft.client.sockets.PeerSockets``): a ZAP socket bound at
``ZAP_ENDPOINT`` in the peer's own context and served on the peer's loop, CURVE server
options on the ROUTER and PUB, CURVE client options on each DEALER to another peer.

The original zmq-raft has no CurveZMQ, so a cluster is all-curve or none: every configured
peer needs a public certificate in ``curve.keys`` (``load_curve`` refuses a config that
mixes).  Secret keys never appear in a log line or an exception message.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from .config import OptionsError, seed_peers
from .curve_keys import (
    PUBLIC_SUFFIX,
    SECRET_SUFFIX,
    CurveKeyError,
    public_key,
    read_certificate,
    read_key_pair,
    read_public_keys,
    z85_encode,
)
from .metrics import PeerMetrics
from .protocol.message_types import PEER_TYPES

log = logging.getLogger("zmqraft.curve")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # RFC 27: where libzmq sends a context's ZAP requests
ZAP_DOMAIN = "zmqraft"
ZAP_VERSION = b"1.0"
PEER_USER_PREFIX = "peer:"
CLIENT_USER = "client"
ANY_CLIENT = "*"
# libzmq's ZMQ_PROTOCOL_ERROR_ZMTP_* codes of a failed CURVE server handshake
_HANDSHAKE_ERRORS = {
    0x11000001: "a client with a wrong server key for this peer",  # ZMTP_CRYPTOGRAPHIC
    0x11000002: "a client without CurveZMQ (plaintext)",  # ZMTP_MECHANISM_MISMATCH
}
REMEMBERED_REFUSALS = 4096  # refused keys remembered (each logged once); a flood cannot grow it


class CurveSetup:
    """This peer's CurveZMQ material: its key pair, the peers' public keys (by id, re-read
    from ``keys_dir`` when a peer we do not know yet is asked for: a membership change may
    add one whose certificate was copied in after we started) and the allowed client keys
    (``None``: any client key)."""

    def __init__(
        self,
        peer_id: str,
        public: bytes,
        secret: bytes,
        peers: Mapping[str, bytes],
        clients: frozenset[bytes] | None,
        keys_dir: str | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.public = public
        self.secret = secret
        self.peers: dict[str, bytes] = dict(peers)
        self.by_key: dict[bytes, str] = {key: pid for pid, key in self.peers.items()}
        self.clients = clients
        self.keys_dir = keys_dir

    def __repr__(self) -> str:  # never the secret
        return f"CurveSetup({self.peer_id!r}, public={z85_encode(self.public)}, peers={sorted(self.peers)})"

    def peer_key(self, peer_id: str) -> bytes | None:
        """The public key of ``peer_id``: known, or read now from ``keys_dir/ID.key``."""
        key = self.peers.get(peer_id)
        if key is None and self.keys_dir is not None:
            path = os.path.join(self.keys_dir, peer_id + PUBLIC_SUFFIX)
            if os.path.exists(path):
                try:
                    key = read_certificate(path).public
                except CurveKeyError as exc:
                    log.error("%s: %s", self.peer_id, exc)
                    return None
                self.peers[peer_id] = key
                self.by_key[key] = peer_id
        return key

    def missing_keys(self, peer_ids: Iterable[str]) -> list[str]:
        """The ids among ``peer_ids`` that have no public key (none may join a curve cluster)."""
        return [peer_id for peer_id in peer_ids if self.peer_key(peer_id) is None]

    def refuse_config(self, peer_ids: Iterable[str]) -> str | None:
        """Why a configuration of ``peer_ids`` cannot be used (None: it can)."""
        missing = self.missing_keys(peer_ids)
        if not missing:
            return None
        where = self.keys_dir or "curve.keys"
        return (
            f"no CurveZMQ public key for peer {', '.join(missing)} in {where} (ID.key): a curve "
            "cluster cannot hold a peer without one; make its keys with zr-keys and copy its "
            "ID.key to every peer first"
        )


def _resolve(path: str, base: str | None) -> str:
    return path if base is None or os.path.isabs(path) else os.path.join(base, path)


def resolve_paths(options: dict[str, Any], base: str) -> None:
    """Make relative ``curve.keys`` / ``curve.clients`` paths relative to ``base`` (the config
    file's folder), in place."""
    curve = options.get("curve")
    if not isinstance(curve, dict):
        return
    for key in ("keys", "clients"):
        value = curve.get(key)
        if isinstance(value, str) and value and value != ANY_CLIENT:
            curve[key] = _resolve(os.path.expanduser(value), base)


def load_curve(options: Mapping[str, Any]) -> CurveSetup | None:
    """The ``CurveSetup`` of validated ``options`` (None: curve is off).  Raises
    ``OptionsError`` naming the option and the file when a key cannot be used."""
    curve = options.get("curve") or {}
    keys_dir = curve.get("keys")
    if keys_dir is None:
        return None
    peer_id = str(options["id"])
    try:
        pair = read_key_pair(keys_dir, peer_id)
    except CurveKeyError as exc:
        raise OptionsError(
            f"curve.keys: {exc} (this peer's key pair; make it with: zr-keys {keys_dir} {peer_id})"
        ) from None
    assert pair.secret is not None
    try:
        peers = {pid: cert.public for pid, cert in read_public_keys(keys_dir).items()}
    except CurveKeyError as exc:
        raise OptionsError(f"curve.keys: {exc}") from None
    own = peers.get(peer_id)
    if own is not None and own != pair.public:
        raise OptionsError(
            f"curve.keys: {os.path.join(keys_dir, peer_id + PUBLIC_SUFFIX)} does not match "
            f"{os.path.join(keys_dir, peer_id + SECRET_SUFFIX)} (the other peers would refuse "
            "this one): copy the public certificate of this key pair"
        )
    peers[peer_id] = pair.public
    missing = [pid for pid, _url in seed_peers(options) if pid not in peers]
    if missing:
        raise OptionsError(
            f"curve.keys: no public certificate for peer {', '.join(missing)} in {keys_dir} "
            f"(ID{PUBLIC_SUFFIX}): the original zmq-raft has no CurveZMQ, so a cluster is all-curve "
            "or none (no mixed clusters); make the keys with zr-keys DIR ID... and copy every ID.key"
        )
    return CurveSetup(peer_id, pair.public, pair.secret, peers, _client_keys(curve.get("clients")), keys_dir)


def _client_keys(clients: Any) -> frozenset[bytes] | None:
    if clients is None:
        return frozenset()  # peers only
    if clients == ANY_CLIENT:
        return None
    if isinstance(clients, str):
        try:
            return frozenset(cert.public for cert in read_public_keys(clients).values())
        except CurveKeyError as exc:
            raise OptionsError(f"curve.clients: {exc}") from None
    keys = set()
    for n, text in enumerate(clients):
        try:
            keys.add(public_key(text, f"curve.clients[{n}]"))
        except CurveKeyError as exc:
            raise OptionsError(str(exc)) from None
    return frozenset(keys)


class CurvePolicy:
    """The ZAP answers and the per-message rule of one peer (see the module doc).  Counts go
    to ``metrics`` (``curve_refused_handshakes``, ``curve_refused_messages``)."""

    def __init__(self, setup: CurveSetup, metrics: PeerMetrics | None = None) -> None:
        self.setup = setup
        self.metrics = metrics if metrics is not None else PeerMetrics()
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._dropped: set[tuple[str, bytes]] = set()
        self._failed: set[tuple[str, int]] = set()

    def user_of(self, key: bytes) -> str | None:
        """The User-Id a connection with public ``key`` gets (None: refused)."""
        peer_id = self.setup.by_key.get(key)
        if peer_id is not None:
            return PEER_USER_PREFIX + peer_id
        clients = self.setup.clients
        if clients is None or key in clients:
            return CLIENT_USER
        return None

    def authorize(self, request: list[bytes]) -> list[bytes] | None:
        """The reply frames to a ZAP request's frames (after the ROUTER envelope: version,
        request id, domain, address, identity, mechanism, credentials...).  None: too short
        to answer (libzmq never sends such a request)."""
        if len(request) < 6:
            return None
        version, request_id, _domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        if version != ZAP_VERSION:
            return [ZAP_VERSION, request_id, b"400", b"unsupported ZAP version", b"", b""]
        if mechanism != b"CURVE" or not credentials or len(credentials[0]) != 32:
            self._refuse(b"", address, mechanism.decode("ascii", "replace") or "no mechanism")
            return [ZAP_VERSION, request_id, b"400", b"CURVE only", b"", b""]
        key = credentials[0]
        user = self.user_of(key)
        if user is None:
            self._refuse(key, address, "an unknown key")
            return [ZAP_VERSION, request_id, b"400", b"unknown key", b"", b""]
        return [ZAP_VERSION, request_id, b"200", b"OK", user.encode(), b""]

    def _refuse(self, key: bytes, address: bytes, what: str) -> None:
        self.metrics.curve_refused_handshakes += 1
        if key in self._refused:
            return
        self._refused[key] = None
        if len(self._refused) > REMEMBERED_REFUSALS:
            self._refused.popitem(last=False)
        log.warning(
            "%s: CurveZMQ handshake refused from %s: %s%s (not a peer key in curve.keys nor an "
            "allowed client key in curve.clients; logged once per key)",
            self.setup.peer_id,
            address.decode("ascii", "replace") or "?",
            what,
            f" {z85_encode(key)}" if key else "",
        )

    def handshake_failed(self, endpoint: str, error: int) -> None:
        """A CURVE handshake on ``endpoint`` (ours) failed before ZAP was asked: the other
        end does not hold this peer's public key (a wrong server key), or is no CurveZMQ
        client.  Counted; logged once per endpoint and error code (libzmq does not say
        which address it came from)."""
        self.metrics.curve_refused_handshakes += 1
        seen = (endpoint, error)
        if seen in self._failed:
            return
        self._failed.add(seen)
        log.warning(
            "%s: a CurveZMQ handshake on %s failed: %s (ZeroMQ protocol error 0x%x; logged once)",
            self.setup.peer_id,
            endpoint,
            _HANDSHAKE_ERRORS.get(error, "a client with a wrong server key, or without CurveZMQ"),
            error,
        )

    @staticmethod
    def may_deliver(user_id: str | None, msg_type: bytes, sender: bytes = b"") -> bool:
        """May a connection authorized as ``user_id`` send a message of ``msg_type``?  A peer
        RPC must come from the key of the peer it names as its sender (``sender``: the
        candidate's or leader's id frame), so no key can speak for another peer."""
        if user_id is None:
            return False
        if msg_type in PEER_TYPES:
            return user_id == PEER_USER_PREFIX + sender.decode("utf-8", "replace")
        return user_id == CLIENT_USER or user_id.startswith(PEER_USER_PREFIX)

    def dropped(self, user_id: str | None, msg_type: bytes, routing_id: bytes) -> None:
        """A message ``may_deliver`` refused: counted, logged once per sender kind and type."""
        self.metrics.curve_refused_messages += 1
        seen = (user_id or "", bytes(msg_type[:8]))
        if seen in self._dropped:
            return
        self._dropped.add(seen)
        log.warning(
            "%s: dropped a %r message from a connection authorized as %s (only a peer's own key "
            "may send its peer RPCs; logged once per kind of sender and type)",
            self.setup.peer_id,
            seen[1],
            user_id or "nobody",
        )


__all__ = [
    "ANY_CLIENT",
    "CLIENT_USER",
    "PEER_USER_PREFIX",
    "ZAP_DOMAIN",
    "ZAP_ENDPOINT",
    "CurvePolicy",
    "CurveSetup",
    "load_curve",
    "resolve_paths",
]
