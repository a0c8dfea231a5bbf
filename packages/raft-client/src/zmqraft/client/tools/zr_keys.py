"""``zr-keys``: CurveZMQ key pairs as certificate files, and their public keys for config files.

::

    zr-keys [-f] DIR NAME...      write DIR/NAME.key (public) and DIR/NAME.key_secret (the pair)
    zr-keys --client [-f] DIR     the same for NAME "client" (what --curve-keys DIR reads)
    zr-keys --show DIR NAME...    print NAME's public key (40 Z85 characters)

The files are ``zmq.auth`` certificates (``zmq.auth.load_certificate`` and czmq read them).
A peer ``ID`` uses ``ID.key_secret`` of the cluster's ``curve.keys`` directory; a client or
tool uses ``client.key_secret`` of its own directory, which also holds the peers' public
``ID.key`` files, and the peers admit it when its ``client.key`` is in ``curve.clients``.

The secret file is created with mode 0600 (never readable by others, not even for a moment:
it is written to a private temporary file that is then linked into place) and ``DIR``, when
missing, with mode 0700.  Existing files are never replaced without ``-f``; with ``-f`` they
are replaced atomically.  A secret key is never printed.

Exit status: 0 done, 1 an error (an unreadable certificate, a bad name, ...), 2 a file
exists (no ``-f``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
from collections.abc import Sequence

import zmq
from zmqraft.core.curve_keys import PUBLIC_SUFFIX, SECRET_SUFFIX, read_certificate

from ._common import UsageError, add_debug, run_tool

CLIENT_NAME = "client"

_SECRET_BANNER = """#   ****  Generated on {now} by zr-keys (zmq-raft)  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

"""
_PUBLIC_BANNER = """#   ****  Generated on {now} by zr-keys (zmq-raft)  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange.

"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zr-keys",
        description="Write CurveZMQ key pairs (zmq.auth certificate files) or show their public keys.",
        epilog="A peer ID uses ID.key_secret of the cluster's curve.keys directory; a tool's "
        "--curve-keys DIR holds client.key_secret (zr-keys --client DIR) and copies of the peers' "
        "ID.key files; the peers admit the client when its client.key is in curve.clients.",
    )
    p.add_argument("dir", metavar="DIR", help="the key directory (created with mode 0700 when missing)")
    p.add_argument("names", nargs="*", metavar="NAME", help="key pair names: peer ids, or 'client'")
    p.add_argument("--client", action="store_true", help=f"also the pair {CLIENT_NAME!r} (for the tools)")
    p.add_argument("-f", "--force", action="store_true", help="replace existing key files")
    p.add_argument("--show", action="store_true", help="print the public keys of NAME... (Z85)")
    add_debug(p)
    return p


def check_name(name: str) -> str:
    """A name is one file name: no path separator, no leading dot, not empty."""
    if not name or name.startswith(".") or os.sep in name or (os.altsep and os.altsep in name):
        raise UsageError(f"invalid key name {name!r}: a peer id or 'client', without '/' or a leading '.'")
    return name


def certificate_text(banner: str, public: bytes, secret: bytes | None = None) -> str:
    """The text ``zmq.auth.create_certificates`` writes (``public``/``secret`` in Z85)."""
    now = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    lines = [banner.format(now=now), "metadata\n", "curve\n"]
    lines.append(f'    public-key = "{public.decode("ascii")}"\n')
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"\n')
    return "".join(lines)


def make_directory(directory: str) -> None:
    """``directory`` with mode 0700 when it is missing (its parents as ``mkdir -p`` makes them)."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if not os.path.isdir(directory):
            raise UsageError(f"{directory}: not a directory") from None
        return
    os.chmod(directory, 0o700)  # the umask may have taken bits the owner needs


def write_file(path: str, text: str, mode: int, force: bool) -> None:
    """Write ``text`` to a temporary file created with ``mode`` (so it is never more open
    than that), then link it to ``path``: refused if ``path`` exists, unless ``force``
    (then ``path`` is replaced in one step)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # exactly mode, whatever the umask took
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UsageError(f"{path} exists: give -f to replace it", 2) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pair_paths(directory: str, name: str) -> tuple[str, str]:
    base = os.path.join(directory, check_name(name))
    return base + PUBLIC_SUFFIX, base + SECRET_SUFFIX


def refuse_existing(directory: str, names: Sequence[str]) -> None:
    """Refuse (status 2) before anything is written when a file of any pair exists."""
    existing = [p for name in names for p in pair_paths(directory, name) if os.path.lexists(p)]
    if existing:
        raise UsageError(
            f"{', '.join(existing)} exist{'s' if len(existing) == 1 else ''}: give -f to replace "
            "(whoever holds the old public key must then get the new one)",
            2,
        )


def write_pair(directory: str, name: str, force: bool = False) -> tuple[str, bytes]:
    """A new key pair as ``NAME.key_secret`` (0600) and ``NAME.key`` (0644) in
    ``directory``; returns the public file's path and the public key (Z85)."""
    public_path, secret_path = pair_paths(directory, name)
    if not force:
        refuse_existing(directory, [name])
    public, secret = zmq.curve_keypair()
    write_file(secret_path, certificate_text(_SECRET_BANNER, public, secret), 0o600, force)
    write_file(public_path, certificate_text(_PUBLIC_BANNER, public), 0o644, force)
    _sync_directory(directory)
    return public_path, public


def public_key_of(directory: str, name: str) -> str:
    """NAME's public key (Z85) from ``NAME.key``, else from ``NAME.key_secret``."""
    base = os.path.join(directory, check_name(name))
    path = base + PUBLIC_SUFFIX if os.path.exists(base + PUBLIC_SUFFIX) else base + SECRET_SUFFIX
    if not os.path.exists(path):
        raise UsageError(f"no certificate {base + PUBLIC_SUFFIX} (nor {base + SECRET_SUFFIX})")
    return read_certificate(path).public_z85


def run(args: argparse.Namespace) -> int:
    names = [*args.names, *([CLIENT_NAME] if args.client and CLIENT_NAME not in args.names else [])]
    if not names:
        raise UsageError("give the names of the key pairs (peer ids), or --client", 1)
    for name in names:
        check_name(name)
    if args.show:
        if args.force:
            raise UsageError("--show writes nothing: -f does not go with it")
        for name in names:
            key = public_key_of(args.dir, name)
            print(key if len(names) == 1 else f"{name} {key}")
        return 0
    if not args.force:
        refuse_existing(args.dir, names)
    make_directory(args.dir)
    for name in names:
        path, public = write_pair(args.dir, name, args.force)
        print(f"{path} (and {name}{SECRET_SUFFIX}, mode 0600): public key {public.decode('ascii')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # options after the names too
    return run_tool("zr-keys", lambda: run(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
