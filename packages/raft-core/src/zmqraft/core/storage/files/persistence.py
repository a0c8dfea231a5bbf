"""State files: an append-only concatenation of msgpack maps (spec/storage.md §8, §9).

The state is the defaults merged with every map in file order.  ``update`` appends one map
holding exactly the given properties and fdatasyncs; once the file has reached 512 KiB the
update becomes a roll-over: a map of *all* properties is written to a temporary file,
synced, the old file is kept as ``<file>-<timestamp>`` (hard link), the temporary file is
renamed over it and the directory fsynced.

Reading back: a trailing incomplete map (or a run of zero bytes, what a crash during an
append may leave on some file systems) is a torn tail and ignored, and the next update rolls
the file over so the tail disappears.  Anything else that is not a map is corruption and
raises ``StorageError`` naming the file and the offset.  Two things the original does not do
and that change no byte: a newly created (empty) file's directory is fsynced, so the file
cannot vanish after its first update was acknowledged.

``RaftPersistence`` (``raft.pers``) and ``StateMachinePersistence`` (``state.pers``) fix the
recognised keys, their order and their validation.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack

from ...protocol import mpack
from ..base import StorageError
from .fsutil import (
    Fd,
    backup_name,
    cleanup_history,
    fdatasync,
    fsync_dir,
    io_error,
    open_fd,
    pwrite_all,
    remove_stale_temps,
    temp_name,
)

ROLL_THRESHOLD = 512 * 1024
MAX_SAFE = (1 << 53) - 1


def read_records(data: bytes, path: str = "<bytes>") -> tuple[list[tuple[int, Any]], int | None]:
    """Decode a state file: ``([(offset, value), ...], torn_at)``.

    ``torn_at`` is the offset of an ignored torn tail (None if the file ends cleanly).
    Top-level values that are neither maps nor arrays raise ``StorageError``."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    records: list[tuple[int, Any]] = []
    offset = 0
    while True:
        try:
            value = unpacker.unpack()
        except msgpack.OutOfData:
            break
        except (ValueError, msgpack.UnpackException) as err:
            raise StorageError(f"invalid state file: {err}", path, offset) from err
        if not isinstance(value, dict | list):
            if not any(data[offset:]):
                return records, offset  # zero bytes to the end: a torn append
            raise StorageError(
                f"invalid state file: top-level {type(value).__name__} is not a map", path, offset
            )
        records.append((offset, value))
        offset = unpacker.tell()
    return records, (offset if offset < len(data) else None)


def _append_all(fd: Fd, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd.fd, view) :]


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class FilePersistence:
    """An append-only state file with a fixed set of keys (implements ``StateStorage``).

    Subclasses define ``DEFAULTS`` (the recognised keys, in written order) and may override
    ``validate`` (called for every value written) and ``normalize`` (for every value read)."""

    DEFAULTS: Mapping[str, Any] = {}

    def __init__(
        self, path: str, defaults: Mapping[str, Any] | None = None, *, read_only: bool = False
    ) -> None:
        self.path = os.path.abspath(path)
        self.read_only = read_only
        self.defaults: dict[str, Any] = dict(self.DEFAULTS if defaults is None else defaults)
        self._state: dict[str, Any] = dict(self.defaults)
        self._size = 0
        self._fd: Fd | None = None
        self.torn_at: int | None = None
        self._open()

    # ---- loading --------------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if self.read_only:
                raise StorageError("state file not found", self.path) from None
            data = None
        if data is not None:
            records, self.torn_at = read_records(data, self.path)
            for offset, value in records:
                if isinstance(value, dict):
                    self._merge_loaded(value, offset)
            self._size = ROLL_THRESHOLD if self.torn_at is not None else len(data)
        if self.read_only:
            return
        if data is None:
            try:
                self._fd = open_fd(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL)
            except OSError as err:
                raise io_error(err, self.path, "create") from err
            fsync_dir(os.path.dirname(self.path))
        else:
            try:
                self._fd = open_fd(self.path, os.O_WRONLY | os.O_APPEND)
            except OSError as err:
                raise io_error(err, self.path, "open") from err
        remove_stale_temps(self.path)

    def _merge_loaded(self, value: dict[Any, Any], offset: int) -> None:
        for key, item in value.items():
            if key in self.defaults:
                try:
                    self._state[key] = self.normalize(key, item)
                except ValueError as err:
                    raise StorageError(f"invalid state file: {key}: {err}", self.path, offset) from err

    def normalize(self, key: str, value: Any) -> Any:
        """A value as read from the file (e.g. integral floats back to int)."""
        return value

    def validate(self, key: str, value: Any) -> Any:
        """A value about to be written; raise ``ValueError`` to refuse it."""
        return value

    # ---- reading --------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    @property
    def size(self) -> int:
        """Bytes in the file (forced to the roll-over threshold after a torn tail or a failed
        write, so the next update rolls the file over)."""
        return self._size

    @staticmethod
    def records(path: str) -> Iterator[Any]:
        """Every map in a state file, in file order (the update history, for tools)."""
        with open(path, "rb") as f:
            data = f.read()
        for _, value in read_records(data, path)[0]:
            yield value

    # ---- writing --------------------------------------------------------------------------------

    def _props(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for key, value in changes.items():
            name = key if key in self.defaults else _camel(key)
            if name not in self.defaults:
                raise ValueError(f"unknown property {key!r} for {os.path.basename(self.path)}")
            given[name] = self.validate(name, value)
        return {key: given[key] for key in self.defaults if key in given}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Append one map with exactly ``changes`` (keys in the fixed order) and fdatasync; a
        roll-over instead when the file has reached 512 KiB."""
        if self.read_only or self._fd is None:
            raise StorageError("state file is read-only", self.path)
        props = self._props(changes)
        if self._size >= ROLL_THRESHOLD:
            self._rotate(props)
            return
        data = mpack.pack(props)
        try:
            try:
                _append_all(self._fd, data)
            except OSError as err:
                raise io_error(err, self.path, "append") from err
            fdatasync(self._fd)
        except StorageError:
            self._size = ROLL_THRESHOLD
            raise
        self._size += len(data)
        self._state.update(props)

    def rotate(self, changes: Mapping[str, Any] | None = None) -> None:
        """Roll over now: the new file holds one map of all properties."""
        if self.read_only or self._fd is None:
            raise StorageError("state file is read-only", self.path)
        self._rotate(self._props(changes or {}))

    def _rotate(self, props: dict[str, Any]) -> None:
        full = {key: props[key] if key in props else self._state[key] for key in self.defaults}
        data = mpack.pack(full)
        tmp = temp_name(self.path)
        try:
            fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except OSError as err:
            raise io_error(err, tmp, "create") from err
        try:
            pwrite_all(fd, data, 0)
            fdatasync(fd)
        except OSError as err:
            fd.close()
            os.unlink(tmp)
            raise io_error(err, tmp, "write") from err
        except StorageError:
            fd.close()
            os.unlink(tmp)
            raise
        fd.close()
        assert self._fd is not None
        self._fd.close()
        try:
            with contextlib.suppress(FileNotFoundError):
                os.link(self.path, backup_name(self.path))
            os.rename(tmp, self.path)
            fsync_dir(os.path.dirname(self.path))
            self._fd = open_fd(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            self._size = ROLL_THRESHOLD
            raise io_error(err, self.path, "roll-over") from err
        self._size = len(data)
        self.torn_at = None
        self._state = full
        cleanup_history(self.path)

    def close(self) -> None:
        if self._fd is not None:
            self._fd.close()
            self._fd = None

    def __enter__(self) -> FilePersistence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the two state files of a peer -----------------------------------------------------------


def _int_value(key: str, value: Any, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    number = mpack.as_int(value)
    if number is None or not 0 <= number <= MAX_SAFE:
        raise ValueError(f"{key} must be an integer 0..2^53-1, got {value!r}")
    return number


def request_id_text(value: Any) -> str | None:
    """A request id as stored in raft.pers: 16-char base64 (12 raw bytes are converted)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == 12:
        return base64.b64encode(bytes(value)).decode("ascii")
    raise ValueError(f"request id must be null, a base64 string or 12 bytes, got {value!r}")


class RaftPersistence(FilePersistence):
    """``raft.pers``: currentTerm, votedFor, peers, peersUpdateRequest, peersIndex."""

    DEFAULTS: Mapping[str, Any] = {
        "currentTerm": 0,
        "votedFor": None,
        "peers": [],
        "peersUpdateRequest": None,
        "peersIndex": None,
    }

    def __init__(self, path: str, peers: Any = None, *, read_only: bool = False) -> None:
        defaults = dict(self.DEFAULTS)
        defaults["peers"] = [] if peers is None else peers
        super().__init__(path, defaults, read_only=read_only)

    def normalize(self, key: str, value: Any) -> Any:
        if key == "currentTerm":
            return _int_value(key, value)
        if key == "peersIndex":
            return _int_value(key, value, nullable=True)
        if key in ("votedFor", "peersUpdateRequest") and value is not None and not isinstance(value, str):
            raise ValueError(f"must be null or a string, got {value!r}")
        return value

    def validate(self, key: str, value: Any) -> Any:
        if key == "currentTerm":
            return _int_value(key, value)
        if key == "peersIndex":
            return _int_value(key, value, nullable=True)
        if key == "votedFor":
            if value is not None and not isinstance(value, str):
                raise ValueError(f"votedFor must be null or a peer id, got {value!r}")
            return value
        if key == "peersUpdateRequest":
            return request_id_text(value)
        if key == "peers":
            if isinstance(value, Mapping):
                if set(value) != {"old", "new"}:
                    raise ValueError("a transitional peers config must have exactly 'old' and 'new'")
                return {"old": _peer_list(value["old"]), "new": _peer_list(value["new"])}
            return _peer_list(value)
        return value

    @property
    def current_term(self) -> int:
        return int(self._state["currentTerm"])

    @property
    def voted_for(self) -> str | None:
        value = self._state["votedFor"]
        return value if isinstance(value, str) else None

    @property
    def peers(self) -> Any:
        return self._state["peers"]

    @property
    def peers_update_request(self) -> str | None:
        value = self._state["peersUpdateRequest"]
        return value if isinstance(value, str) else None

    @property
    def peers_index(self) -> int | None:
        value = self._state["peersIndex"]
        return value if isinstance(value, int) else None


def _peer_list(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"peers must be an array, got {value!r}")
    return [list(p) if isinstance(p, tuple) else p for p in value]


class StateMachinePersistence(FilePersistence):
    """``state.pers`` of the broadcast state machine: ``{lastApplied}``."""

    DEFAULTS: Mapping[str, Any] = {"lastApplied": 0}

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        super().__init__(path, None, read_only=read_only)

    def normalize(self, key: str, value: Any) -> Any:
        return _int_value(key, value)

    def validate(self, key: str, value: Any) -> Any:
        return _int_value(key, value)

    @property
    def last_applied(self) -> int:
        return int(self._state["lastApplied"])

    def set_last_applied(self, index: int) -> None:
        self.update({"lastApplied": index})
