"""Config files in every supported format, namespaces and the defaults merge."""

from __future__ import annotations

from pathlib import Path

import pytest
from zmqraft.core.config import OptionsError
from zmqraft.core.config_files import read_config, read_document

DOCS = {
    "json": '{"raft": {"id": "1", "data": {"path": "d"}}, "other": {"cfg": {"id": "x"}}}',
    "toml": '[raft]\nid = "1"\n[raft.data]\npath = "d"\n[other.cfg]\nid = "x"\n',
    "yaml": "raft:\n  id: '1'\n  data:\n    path: d\nother:\n  cfg:\n    id: x\n",
    "yml": "raft:\n  id: '1'\n  data:\n    path: d\nother:\n  cfg:\n    id: x\n",
    "hjson": "{\n  # comment\n  raft: {\n    id: '1'\n    data: {\n      path: d\n    }\n  }\n"
    "  other: {cfg: {id: 'x'}}\n}\n",
    "py": 'raft = {"id": "1", "data": {"path": "d"}}\nother = {"cfg": {"id": "x"}}\n',
}


@pytest.mark.parametrize("ext", sorted(DOCS))
def test_every_format(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"config.{ext.upper() if ext == 'json' else ext}"
    path.write_text(DOCS[ext])
    opts = read_config(path)
    assert opts["id"] == "1"
    assert opts["data"]["path"] == "d" and opts["data"]["log"] == "log"
    assert opts["electionTimeoutMin"] == 200
    assert type(opts["data"]) is dict
    assert read_config(path, "other.cfg")["id"] == "x"
    assert set(read_config(path, "", allow_unknown=True)) >= {"raft", "other", "peers"}
    with pytest.raises(OptionsError, match="unknown options raft, other"):
        read_config(path, "")  # the whole document: its namespaces are not options
    with pytest.raises(OptionsError, match="There is no such configuration namespace: nope"):
        read_config(path, "nope")


def test_python_config_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.py"
    path.write_text('import os\nconfig = {"raft": {"id": os.sep and "7"}}\n')
    assert read_config(path)["id"] == "7"


def test_no_file_or_empty_file_means_defaults(tmp_path: Path) -> None:
    assert read_document(None) == {"raft": {}}
    empty = tmp_path / "e.yaml"
    empty.write_text("\n")
    assert read_document(empty) == {"raft": {}}
    opts = read_config(None)
    assert opts["peers"] == [{"id": "local", "url": "tcp://127.0.0.1:8047"}]
    assert opts["data"]["path"] == "raft"


def test_unknown_type_and_bad_documents(tmp_path: Path) -> None:
    bad = tmp_path / "c.ini"
    bad.write_text("x")
    with pytest.raises(OptionsError, match=r"Unrecognized config file type\. Use one of: yaml, json, hjson"):
        read_config(bad)
    listing = tmp_path / "c.json"
    listing.write_text("[1, 2]")
    with pytest.raises(OptionsError, match="must hold a mapping"):
        read_config(listing)
    wrong = tmp_path / "w.json"
    wrong.write_text('{"raft": {"data": 3}}')
    with pytest.raises(OptionsError, match=r"w\.json: Expected a namespace: data"):
        read_config(wrong)  # create_options' TypeError, naming the file
