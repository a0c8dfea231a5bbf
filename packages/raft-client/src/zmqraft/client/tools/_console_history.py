"""The console's history: prompt_toolkit's file history without repeated lines, trimmed on
exit to the newest ``HISTORY_LINES`` distinct lines (prompt_toolkit only ever appends)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HISTORY_FILE = ".zr_console_history"
HISTORY_LINES = 1000


def load_history(path: str) -> Any:
    from prompt_toolkit.history import FileHistory

    class TrimmedHistory(FileHistory):
        """FileHistory without consecutive duplicates, keeping the newest 1000 lines."""

        def load_history_strings(self) -> Any:
            seen: list[str] = []
            for line in super().load_history_strings():  # newest first
                if line not in seen:
                    seen.append(line)
                if len(seen) >= HISTORY_LINES:
                    break
            return iter(seen)

        def store_string(self, string: str) -> None:
            if self.get_strings() and self.get_strings()[-2:-1] == [string]:
                return
            super().store_string(string)

    return TrimmedHistory(path)


def trim_history_file(path: str | Path, keep: int = HISTORY_LINES) -> int:
    """Rewrite a prompt_toolkit history file with its newest ``keep`` distinct lines (the
    newest copy of a repeated line stays); returns how many entries remain.  prompt_toolkit
    only ever appends, so without this the file grows forever."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    entries: list[tuple[str, list[str]]] = []  # (the "# time" line, the "+" lines)
    for line in text.splitlines():
        if line.startswith("#"):
            entries.append((line, []))
        elif line.startswith("+"):
            if not entries:
                entries.append(("#", []))
            entries[-1][1].append(line)
    kept: list[tuple[str, list[str]]] = []
    seen: set[tuple[str, ...]] = set()
    for stamp, lines in reversed(entries):
        key = tuple(lines)
        if not lines or key in seen:
            continue
        seen.add(key)
        kept.append((stamp, lines))
        if len(kept) >= keep:
            break
    kept.reverse()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"\n{stamp}\n" + "".join(f"{line}\n" for line in lines) for stamp, lines in kept))
    os.replace(tmp, path)
    return len(kept)
