"""Ordinary mistakes on the peer's command line are one line and a non-zero status, on both
runtimes: the real commands run as subprocesses (the traceback only with -v)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from raft_harness import SERVER_PYTHON, free_ports

COMMANDS = {"zmq-raft": "zmqraft.asyncio", "zmq-raft-gevent": "zmqraft.gevent"}


@pytest.fixture(params=sorted(COMMANDS))
def command(request: pytest.FixtureRequest) -> list[str]:
    return [SERVER_PYTHON, "-m", COMMANDS[request.param]]


def run(command: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def error_line(result: subprocess.CompletedProcess[str], banner: str = "RAFT INIT ERROR: ") -> str:
    """The one error line (log lines of the runtime aside); no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(banner)]
    assert len(lines) == 1, result.stderr
    return lines[0][len(banner) :]


def cluster_yaml(tmp_path: Path, extra: str = "") -> Path:
    a, b = free_ports(2)
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "raft:\n"
        "  peers:\n"
        f'    - {{id: "1", url: "tcp://127.0.0.1:{a}"}}\n'
        f'    - {{id: "2", url: "tcp://127.0.0.1:{b}"}}\n'
        "  data: {path: raft, appendIdToPath: true}\n" + extra
    )
    return path


def test_missing_config_file(command: list[str], tmp_path: Path) -> None:
    line = error_line(run(command, "-c", "nope.yaml", "1", cwd=tmp_path))
    assert line == "config file not found: nope.yaml (check the -c path)"


def test_yaml_syntax_error_names_the_line(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("raft:\n  peers: [\n  data: x\n")
    line = error_line(run(command, "-c", "bad.yaml", "1", cwd=tmp_path))
    assert line.startswith("bad.yaml, line 4: syntax error: ")


def test_unknown_peer_id_leaves_no_data_directory(command: list[str], tmp_path: Path) -> None:
    cluster_yaml(tmp_path)
    line = error_line(run(command, "-c", "cluster.yaml", "7", cwd=tmp_path))
    assert line.startswith("unknown peer id '7': the peers are '1', '2' (give one of them, or router.bind")
    assert not (tmp_path / "raft").exists()


@pytest.mark.parametrize(
    ("typo", "hint"),
    [
        ("  peer: []\n", "unknown option peer (did you mean peers?)"),
        ("  webmonitr: {enable: true}\n", "unknown option webmonitr (did you mean webmonitor?)"),
        ("  electionTimeoutMn: 300\n", "unknown option electionTimeoutMn (did you mean electionTimeoutMin?)"),
    ],
)
def test_config_typos_get_a_did_you_mean(command: list[str], tmp_path: Path, typo: str, hint: str) -> None:
    cluster_yaml(tmp_path, typo)
    line = error_line(run(command, "-c", "cluster.yaml", "1", cwd=tmp_path))
    assert line.startswith(f"cluster.yaml: {hint}; allowUnknownOptions: true accepts")
    assert not (tmp_path / "raft").exists()


def test_extra_keys_are_allowed_when_asked(command: list[str], tmp_path: Path) -> None:
    cluster_yaml(tmp_path, "  mine: 1\n")
    checked = run(command, "--allow-unknown-options", "--check-config", "cluster.yaml", "1", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    own = cluster_yaml(tmp_path).read_text() + "  mine: 1\n  allowUnknownOptions: true\n"
    (tmp_path / "own.yaml").write_text(own)
    assert run(command, "--check-config", "own.yaml", "1", cwd=tmp_path).returncode == 0


def test_port_in_use(command: list[str], tmp_path: Path) -> None:
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "c.json").write_text(json.dumps({"raft": {"peers": [["1", f"tcp://127.0.0.1:{port}"]]}}))
        line = error_line(run(command, "-c", "c.json", "1", cwd=tmp_path))
    finally:
        taken.close()
    assert line.startswith(f"address already in use: tcp://127.0.0.1:{port} (this peer's ROUTER): ")


def test_data_path_is_a_file(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "c.yaml").write_text("raft:\n  data: {path: afile}\n")
    line = error_line(run(command, "-c", "c.yaml", cwd=tmp_path))
    assert line.startswith("not a directory: afile (a file is in the way")


def test_data_path_read_only(command: list[str], tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere a mode forbids: a path the kernel refuses
        if not Path("/sys").is_dir():
            pytest.skip("no read-only path for root")
        path = "/sys/zmqraft-test-data"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        path = str(ro / "data")
    (tmp_path / "c.yaml").write_text(f"raft:\n  data: {{path: {path}}}\n")
    line = error_line(run(command, "-c", "c.yaml", cwd=tmp_path))
    assert line.startswith("permission denied: ") and "choose a writable one" in line


def test_verbose_shows_the_traceback(command: list[str], tmp_path: Path) -> None:
    result = run(command, "-v", "-c", "nope.yaml", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    last = result.stderr.rstrip().splitlines()[-1]
    assert last == "RAFT INIT ERROR: config file not found: nope.yaml (check the -c path)"


def test_check_config(command: list[str], tmp_path: Path) -> None:
    cluster_yaml(tmp_path)
    one = run(command, "--check-config", "cluster.yaml", "2", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    options = json.loads(one.stdout)
    assert options["id"] == "2" and options["data"]["path"] == "raft/2"
    assert options["electionTimeoutMin"] == 200 and options["data"]["compact"]["watchInterval"] == 10_000
    every = run(command, "--check-config", "cluster.yaml", cwd=tmp_path)
    assert every.returncode == 0 and sorted(json.loads(every.stdout)) == ["1", "2"]
    assert every.stderr.strip() == "cluster.yaml: ok (1, 2)"
    bad = run(command, "--check-config", "cluster.yaml", "9", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("zmq-raft: config error: unknown peer id '9'")
    assert not (tmp_path / "raft").exists()


def test_a_curve_secret_key_others_can_read_is_one_line(command: list[str], tmp_path: Path) -> None:
    zmq_auth = pytest.importorskip("zmq.auth")
    keys = tmp_path / "etc" / "keys"
    keys.mkdir(parents=True)
    for peer_id in ("1", "2"):
        zmq_auth.create_certificates(str(keys), peer_id)
    os.chmod(keys / "1.key_secret", 0o644)
    os.chmod(keys / "2.key_secret", 0o600)
    config = cluster_yaml(tmp_path, "  curve: {keys: keys}\n")
    config = config.rename(tmp_path / "etc" / "cluster.yaml")  # keys: relative to the file's folder
    line = error_line(run(command, "-c", str(config), "1", cwd=tmp_path))
    secret = keys / "1.key_secret"
    assert line == (
        f"curve.keys: {secret}: secret key file is accessible by others (mode 0644); run: chmod 600 "
        f"{secret} (this peer's key pair; make it with: zr-keys {keys} 1)"
    )
    assert not (tmp_path / "raft").exists()
