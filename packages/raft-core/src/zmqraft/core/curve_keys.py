"""CurveZMQ keys: Z85 text, certificate files, and the key set a client connects with.

Certificates are the files pyzmq's ``zmq.auth.create_certificates`` writes (and ``zr-keys``
writes): ``NAME.key`` holds a public key, ``NAME.key_secret`` the pair.  They are read here,
in the core, so that both server runtimes, the clients and the tools apply one set of rules:
a secret key file that others can read is refused (the key is as good as published), and a
malformed file is reported with its path and line.  Keys are 32 raw bytes in memory; Z85 (40
characters) only on paper: in files, config and log lines.  A secret key is never put in
an exception message or a log line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_SIZE = 32
Z85_SIZE = 40
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"

_Z85_ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_VALUE = {char: value for value, char in enumerate(_Z85_ALPHABET)}


class CurveKeyError(ValueError):
    """A key or certificate file cannot be used (the message says which and why; it never
    contains a secret key)."""


def z85_encode(data: bytes) -> str:
    """ZeroMQ's Z85 (RFC 32) text of ``data`` (a multiple of 4 bytes long)."""
    if len(data) % 4:
        raise CurveKeyError(f"Z85 encodes multiples of 4 bytes, not {len(data)}")
    out = bytearray()
    for offset in range(0, len(data), 4):
        value = int.from_bytes(data[offset : offset + 4], "big")
        chunk = bytearray(5)
        for position in range(4, -1, -1):
            value, digit = divmod(value, 85)
            chunk[position] = _Z85_ALPHABET[digit]
        out += chunk
    return out.decode("ascii")


def z85_decode(text: str | bytes) -> bytes:
    """The bytes of Z85 ``text`` (a multiple of 5 characters long)."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if len(raw) % 5:
        raise CurveKeyError(f"Z85 text is a multiple of 5 characters long, not {len(raw)}")
    out = bytearray()
    for offset in range(0, len(raw), 5):
        value = 0
        for char in raw[offset : offset + 5]:
            digit = _Z85_VALUE.get(char)
            if digit is None:
                raise CurveKeyError(f"{chr(char)!r} is not a Z85 character")
            value = value * 85 + digit
        if value > 0xFFFFFFFF:
            raise CurveKeyError("Z85 text out of range")
        out += value.to_bytes(4, "big")
    return bytes(out)


def public_key(text: str | bytes, what: str = "public key") -> bytes:
    """A key given as 40 Z85 characters (or 32 raw bytes) as its 32 bytes."""
    if isinstance(text, bytes) and len(text) == KEY_SIZE:
        return text
    raw = text.strip() if isinstance(text, str) else text.strip().decode("ascii", "replace")
    if len(raw) != Z85_SIZE:
        raise CurveKeyError(f"{what}: a CurveZMQ key is {Z85_SIZE} Z85 characters, not {len(raw)}")
    try:
        return z85_decode(raw)
    except CurveKeyError as exc:
        raise CurveKeyError(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate file: its public key and, for a ``.key_secret`` file, the secret key.
    ``metadata`` holds the file's ``metadata`` section (free-form ``name = "value"`` lines)."""

    path: str
    public: bytes
    secret: bytes | None = field(default=None, repr=False)
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def public_z85(self) -> str:
        return z85_encode(self.public)


def check_secret_file_mode(path: str | os.PathLike[str]) -> None:
    """Refuse a secret key file that anyone but its owner may read or write, as ssh does."""
    mode = os.stat(path).st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise CurveKeyError(
            f"{os.fspath(path)}: secret key file is accessible by others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {os.fspath(path)}"
        )


def read_certificate(path: str | os.PathLike[str]) -> Certificate:
    """Read a ``zmq.auth`` certificate file; a secret one must be private to its owner."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CurveKeyError(f"{name}: no such certificate file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveKeyError(f"{name}: cannot read the certificate: {exc}") from None
    public: bytes | None = None
    secret: bytes | None = None
    metadata: dict[str, str] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" not in stripped:
            section = stripped
            continue
        key, _, value = stripped.partition("=")
        key, value = key.strip(), value.strip().strip("'\"")
        if section == "metadata":
            metadata[key] = value
        elif key in ("public-key", "secret-key"):
            decoded = public_key(value, f"{name} line {number}: {key}")
            if key == "public-key":
                public = decoded
            else:
                secret = decoded
    if public is None:
        raise CurveKeyError(f"{name}: not a CurveZMQ certificate (no public-key line)")
    if secret is not None:
        check_secret_file_mode(name)
    return Certificate(name, public, secret, metadata)


def read_key_pair(directory: str | os.PathLike[str], name: str) -> Certificate:
    """``DIRECTORY/NAME.key_secret``: the pair a peer or a client presents."""
    cert = read_certificate(os.path.join(directory, name + SECRET_SUFFIX))
    if cert.secret is None:
        raise CurveKeyError(f"{cert.path}: holds no secret-key (a public certificate?)")
    return cert


def read_public_keys(directory: str | os.PathLike[str]) -> dict[str, Certificate]:
    """Every ``NAME.key`` in ``directory``, by NAME (the public certificates it trusts)."""
    name = os.fspath(directory)
    try:
        entries = sorted(os.listdir(name))
    except FileNotFoundError:
        raise CurveKeyError(f"{name}: no such key directory") from None
    except OSError as exc:
        raise CurveKeyError(f"{name}: cannot list the key directory: {exc}") from None
    return {
        entry[: -len(PUBLIC_SUFFIX)]: read_certificate(os.path.join(name, entry))
        for entry in entries
        if entry.endswith(PUBLIC_SUFFIX)
    }


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """What a client (or a peer's DEALER) connects with: its own key pair, and the servers'
    public keys by peer id or by url.  ``server_key(url, peer_id)`` picks the key for one
    connection: by url first, then by peer id, then the only key if there is just one."""

    public: bytes
    secret: bytes = field(repr=False)
    servers: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str], name: str = "client") -> ClientKeys:
        """``DIRECTORY/NAME.key_secret`` is ours; every other ``DIRECTORY/ID.key`` is a peer's."""
        pair = read_key_pair(directory, name)
        assert pair.secret is not None
        servers = {peer: cert.public for peer, cert in read_public_keys(directory).items() if peer != name}
        return cls(pair.public, pair.secret, servers)

    def server_key(self, url: str, peer_id: str | None = None) -> bytes:
        key = self.servers.get(url)
        if key is None and peer_id is not None:
            key = self.servers.get(peer_id)
        if key is None and len(set(self.servers.values())) == 1:
            key = next(iter(self.servers.values()))
        if key is None:
            known = ", ".join(sorted(self.servers)) or "none"
            raise CurveKeyError(
                f"no CurveZMQ server key for {url}"
                + (f" (peer {peer_id})" if peer_id else "")
                + f": known keys are for {known}; key the servers by url, or give the peer ids with the urls"
            )
        return key
