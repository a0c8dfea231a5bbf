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

from .config import OptionsError, check_known_options, create_options, select_namespace
from .curve_policy import resolve_paths

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
    try:
        scope = runpy.run_path(path)
    except SyntaxError:
        raise
    except Exception as err:
        raise OptionsError(f"{path}: the config module failed: {type(err).__name__}: {err}") from err
    if isinstance(scope.get("config"), Mapping):
        return dict(scope["config"])
    return {
        name: value
        for name, value in scope.items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and not callable(value)
    }


def _syntax_error(name: str, err: Exception) -> OptionsError:
    """A parse error of the file as one line naming the file and the line."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)  # yaml
    line = getattr(err, "lineno", None)  # json, hjson
    if mark is not None:
        line = mark.line + 1
    reason = getattr(err, "problem", None) or getattr(err, "msg", None) or str(err)
    where = f"{name}, line {line}" if line is not None else name
    return OptionsError(f"{where}: syntax error: {' '.join(str(reason).split())} (fix the file)")


def read_document(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The whole document of a config file (``{"raft": {}}`` without a file or when empty).
    Raises ``OptionsError`` naming the file (and the line of a syntax error)."""
    if path is None or os.fspath(path) == "":
        return {"raft": {}}
    name = os.fspath(path)
    if _extension(name) not in EXTENSIONS:
        raise OptionsError(f"Unrecognized config file type. Use one of: {', '.join(EXTENSIONS)}")
    if not os.path.isfile(name):
        why = "is a directory" if os.path.isdir(name) else "not found"
        raise OptionsError(f"config file {why}: {name} (check the -c path)")
    try:
        return _read(name)
    except OptionsError:
        raise
    except OSError as err:
        raise OptionsError(f"can not read the config file {name}: {err.strerror or err}") from err
    except Exception as err:
        if type(err).__module__.split(".")[0] in ("yaml", "json", "tomllib", "hjson") or isinstance(
            err, ValueError | SyntaxError
        ):
            raise _syntax_error(name, err) from err
        raise


def _extension(name: str) -> str:
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    return "yaml" if ext == "yml" else ext


def _read(name: str) -> dict[str, Any]:
    ext = _extension(name)
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


def read_config(
    path: str | os.PathLike[str] | None, namespace: str | None = None, *, allow_unknown: bool = False
) -> dict[str, Any]:
    """The options of ``namespace`` in the config file, merged with the defaults.  Keys that
    are not options are an ``OptionsError`` naming the file (unless ``allowUnknownOptions``)."""
    user = select_namespace(read_document(path), namespace)
    if path is not None and os.fspath(path):
        # paths in the file (curve.keys, curve.clients) are relative to the file's folder
        resolve_paths(user, os.path.dirname(os.path.abspath(os.fspath(path))))
    if allow_unknown:
        user["allowUnknownOptions"] = True
    try:
        check_known_options(user)
    except OptionsError as err:
        raise OptionsError(f"{os.fspath(path)}: {err}" if path else str(err)) from None
    try:
        return create_options(user)
    except TypeError as err:
        where = f"{os.fspath(path)}: " if path else ""
        raise OptionsError(f"{where}{err} (a mapping is expected there)") from None
