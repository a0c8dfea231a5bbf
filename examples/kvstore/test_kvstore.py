"""The kvstore example: the store alone, under the simulator, and as the state machine of a
real three-peer cluster (``zmq-raft`` processes on 127.0.0.1, ephemeral ports) through a
leader kill, a compaction by ``zr-log-compact`` and a peer that starts from nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hello_client import hello
from kvstore import KeyValueStore, KVClient, KVStateMachine, SimKeyValueStore, delete_command, set_command
from zmqraft.core.protocol.entry import EntryType, encode_entry
from zmqraft.core.statemachine import StateMachineError

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


def entry(data: bytes, kind: EntryType = EntryType.STATE) -> bytes:
    return encode_entry(os.urandom(12), kind, 1, data)


# ---- the store alone ---------------------------------------------------------------------------


def test_commands_set_and_delete_and_skip_what_is_not_a_command() -> None:
    store = KeyValueStore()
    for command in (set_command("a", "1"), set_command("b", "2"), b"not json", b"[]", delete_command("a")):
        store.apply(command)
    assert store.data == {"b": "2"}
    copy = KeyValueStore()
    copy.restore(store.snapshot())
    assert copy.data == store.data and copy.snapshot() == store.snapshot()


class Snap:
    def __init__(self, index: int, data: bytes) -> None:
        self.index, self.term, self.size, self._data = index, 1, len(data), data

    def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]


def test_the_machine_applies_state_entries_in_order_from_a_snapshot() -> None:
    machine = KVStateMachine({})
    config = entry(b"\x90", EntryType.CONFIG)
    assert machine.apply_entries([config, entry(set_command("k", "v"))], 1, 1) == 2
    assert machine.store.data == {"k": "v"}
    with pytest.raises(StateMachineError):
        machine.apply_entries([entry(set_command("x", "y"))], 5, 1)  # a gap
    base = KeyValueStore()
    base.apply(set_command("old", "1"))
    assert machine.apply_entries([entry(delete_command("old"))], 11, 1, Snap(10, base.snapshot())) == 11
    assert machine.store.data == {}


def test_the_store_under_the_simulator() -> None:
    """``zmq-raft-sim`` runs the store on 3- and 5-peer clusters under faults (crashes,
    partitions, compaction, snapshots sent to lagging peers) and compares the peers' states."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    sim = [sys.executable, "-m", "zmqraft.core.simulation.cli", "--state-machine", "kvstore:SimKeyValueStore"]
    result = subprocess.run(
        [*sim, "--seeds", "12", "--steps", "2000", "--jobs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "12 passed, 0 failed" in result.stdout


def test_the_simulated_store_deletes_too() -> None:
    from zmqraft.core.protocol.entry import LogEntry

    sim = SimKeyValueStore()
    for n in range(3):
        sim.apply_entry(n + 1, LogEntry(bytes(12), EntryType.STATE, 1, f"c1-{n}".encode()))
    assert sim.store.data == {}  # set 0, set 1, then delete
    sim.apply_entry(4, LogEntry(bytes(12), EntryType.STATE, 1, b"c1-3"))
    assert sim.store.data == {"c1": "3"}


# ---- a real cluster ----------------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class KVCluster:
    """Three ``zmq-raft`` processes sharing a ``.py`` config: cluster.py's, on free ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids = ["1", "2", "3"]
        self.urls = {p: f"tcp://127.0.0.1:{port}" for p, port in zip(self.ids, free_ports(3), strict=True)}
        self.secret = os.urandom(6).hex()
        raft: dict[str, Any] = {
            "peers": [{"id": p, "url": url} for p, url in self.urls.items()],
            "data": {
                "path": str(root / "data"),
                "appendIdToPath": True,
                "compact": {"watch": True, "watchInterval": 100},  # cluster.py's, polled faster
            },
            "secret": self.secret,
        }
        # cluster.py itself, with this cluster's urls, data directory and secret
        self.config = root / "cluster.py"
        self.config.write_text(
            f"import runpy\nconfig = runpy.run_path({str(HERE / 'cluster.py')!r})['config']\n"
            f"config['raft'].update({raft!r})\n"
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def data(self, peer: str) -> Path:
        return self.root / "data" / peer

    def start(self, peer: str) -> None:
        with open(self.root / f"peer-{peer}.log", "ab") as out:
            self.procs[peer] = subprocess.Popen(
                [sys.executable, "-m", "zmqraft.asyncio", "-c", str(self.config), peer],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self, peer: str) -> None:
        proc = self.procs.pop(peer)
        proc.kill()
        proc.wait()

    def close(self) -> None:
        for peer in list(self.procs):
            self.kill(peer)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.root.glob("peer-*.log")))


def compact(data_dir: Path, *args: str) -> None:
    """``zr-log-compact -d DIR ARGS``: a snapshot in DIR/compact/snap.new (-N: no prune list)."""
    tool = [sys.executable, "-m", "zmqraft.client.tools.zr_log_compact", "-d", str(data_dir), "-N"]
    subprocess.run([*tool, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KVCluster]:
    made = KVCluster(tmp_path)
    try:
        yield made
    finally:
        made.close()
        print(made.logs())  # shown when the test failed


@pytest.mark.timeout(120)
def test_a_three_peer_cluster(cluster: KVCluster) -> None:
    for peer in cluster.ids:
        cluster.start(peer)
    with KVClient(list(cluster.urls.values()), secret=cluster.secret, timeout=20) as kv:

        def applied(url: str, index: int) -> Callable[[], bool]:
            return lambda: kv.client.request_log_info(url=url).last_applied >= index

        def compacted(url: str, index: int) -> Callable[[], bool]:
            return lambda: kv.client.request_log_info(url=url).first_index == index + 1

        for n in range(50):
            kv.set(f"k{n}", f"v{n}")
        kv.delete("k0")
        assert kv.get("k1") == "v1" and kv.get("k0") is None and kv.get("missing") is None

        # the leader dies: another takes over, with every acknowledged write
        leader = kv.client.request_config().leader_id
        assert leader is not None
        cluster.kill(leader)
        assert kv.get("k49") == "v49"
        last = kv.set("after", "the kill")
        running = [p for p in cluster.ids if p != leader]

        # compaction: zr-log-compact feeds each running peer's files to a fresh KVStateMachine
        # and writes the snapshot to compact/snap.new, which the peer installs
        for peer in running:
            wait_for(f"{peer} to apply {last}", applied(cluster.urls[peer], last))
            compact(cluster.data(peer), "-i", str(last), "-m", f"{HERE / 'kvstore.py'}:KVStateMachine")
        for peer in running:
            wait_for(f"{peer} to install the snapshot", compacted(cluster.urls[peer], last))

        # the dead peer comes back with no files at all: the leader sends it the snapshot
        shutil.rmtree(cluster.data(leader))
        cluster.start(leader)
        back = cluster.urls[leader]
        wait_for("the snapshot on the new peer", lambda: kv.get("after", url=back) == "the kill", 30)
        assert kv.client.request_log_info(url=back).first_index == last + 1
        assert [kv.get(f"k{n}", url=back) for n in range(50)] == [None, *(f"v{n}" for n in range(1, 50))]

    # the getting-started client: a raw update (the store skips what is not a command); the
    # entries before it are in the snapshot now, so it is the only one left in the log
    assert hello(list(cluster.urls.values()), cluster.secret) == [b"hello, raft"]
