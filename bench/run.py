"""Run every bench/bench_*.py (each has a ``main() -> None`` that prints its figures).

Figures are ratios against a baseline measured in the same run on the same machine; absolute
numbers are printed for context only.  ``python bench/run.py [name-substring ...]``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    for path in sorted(here.glob("bench_*.py")):
        if argv and not any(a in path.stem for a in argv):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
