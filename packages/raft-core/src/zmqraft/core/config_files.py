"""Config files for every command-line tool (spec server-and-tools.md §b.4).

``read_config(path, namespace)`` reads a YAML (``.yaml``/``.yml``), JSON, Hjson, TOML or
Python (``.py``) file, picks the namespace (default ``raft``; ``""`` for the whole document;
dotted paths such as ``other.cfg``) and merges it with the server defaults
(``zmqraft.core.config.create_options``).  No file, or an empty one, means ``{"raft": {}}``:
all defaults.

A ``.py`` config is run as a module; its ``config`` mapping is the document if it defines
one, otherwise the document is made of its public top-level names (``raft = {...}``).
"""

from __future__ import annotations

import json
import os
import runpy
import tomllib
import types
from collections.abc import Mapping
from typing import Any

from .config import OptionsError, load_options

EXTENSIONS = ("yaml", "json", "hjson", "toml", "py")


def _load_yaml(text: str) -> Any:
    import yaml  # type: ignore[import-untyped]

    return yaml.safe_load(text)


def _load_hjson(text: str) -> Any:
    import hjson  # type: ignore[import-untyped]

    return _plain(hjson.loads(text))


def _plain(value: Any) -> Any:
    """hjson's OrderedDicts as plain dicts (and lists kept lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _load_python(path: str) -> Any:
    scope = runpy.run_path(path)
    if isinstance(scope.get("config"), Mapping):
        return dict(scope["config"])
    return {
        name: value
        for name, value in scope.items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and not callable(value)
    }


def read_document(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The whole document of a config file (``{"raft": {}}`` without a file or when empty)."""
    if path is None or os.fspath(path) == "":
        return {"raft": {}}
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    if ext == "yml":
        ext = "yaml"
    if ext not in EXTENSIONS:
        raise OptionsError(f"Unrecognized config file type. Use one of: {', '.join(EXTENSIONS)}")
    if ext == "py":
        document = _load_python(name)
    else:
        with open(name, encoding="utf-8") as f:
            text = f.read()
        if not text.strip():
            return {"raft": {}}
        if ext == "json":
            document = json.loads(text)
        elif ext == "toml":
            document = tomllib.loads(text)
        elif ext == "yaml":
            document = _load_yaml(text)
        else:
            document = _load_hjson(text)
    if document is None:
        return {"raft": {}}
    if not isinstance(document, Mapping):
        raise OptionsError(f"{name}: the config file must hold a mapping, not {type(document).__name__}")
    return dict(document)


def read_config(path: str | os.PathLike[str] | None, namespace: str | None = None) -> dict[str, Any]:
    """The options of ``namespace`` in the config file, merged with the defaults."""
    return load_options(read_document(path), namespace)
