"""The option reference (docs/options.md), made from the option table ``config.OPTIONS`` so
that it cannot drift from what the server accepts.

``python -m zmqraft.core.option_reference > docs/options.md`` regenerates it; a test fails when
the committed file differs from ``render()``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .config import NS, OPTIONS, Option

HEADER = """# zmq-raft options

Generated from the option table `OPTIONS` in
`packages/raft-core/src/zmqraft/core/config.py`: do not edit; regenerate with
`python -m zmqraft.core.option_reference > docs/options.md`.

The options live under `raft:` in a config file (YAML, JSON, Hjson, TOML or a `.py` module;
`--ns` picks another namespace).  Keys that are not in this table are rejected with a
"did you mean" hint unless `allowUnknownOptions: true`.  `zmq-raft --check-config FILE [ID]`
validates a file and prints the effective options.  Times are in milliseconds, as in the
original.

| option | default | unit | what it does |
|---|---|---|---|
"""


def _default(option: Option) -> str:
    if option.default is NS:
        return "(namespace)"
    if option.default is None:
        return "null" if option.filled else "(none)"
    value: Any = option.default
    return "`" + json.dumps(value, separators=(", ", ": ")).replace("|", "\\|") + "`"


def render() -> str:
    """The whole reference as Markdown."""
    rows = [
        f"| `{o.key}` | {_default(o)} | {o.unit} | {o.description.replace('|', chr(92) + '|')} |"
        for o in OPTIONS
    ]
    return HEADER + "\n".join(rows) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
