"""``zmq-raft-sim``: run seeded cluster histories under faults and check Raft's safety.

    zmq-raft-sim --seeds 300 --steps 3000          # seeds 0..299, exit 1 on any violation
    zmq-raft-sim --seed 1234 --steps 3000          # replay one history exactly
    zmq-raft-sim --state-machine mymod:MyMachine   # your state machine under the simulator

A state machine class needs ``apply_entry(index, entry)`` (entry: LogEntry), ``snapshot() ->
bytes`` (its whole state) and ``restore(data)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from .checker import Violation
from .cluster import SimOptions, Simulation, load_state_machine
from .mutants import MUTANTS, mutant


def run_one(seed: int, args: argparse.Namespace) -> tuple[int, str | None, int, dict[str, int]]:
    peers = args.peers if args.peers else (3, 5)[seed % 2]
    options = SimOptions(
        peers=peers,
        steps=args.steps,
        faults=not args.no_faults,
        original_followers=args.original_followers or (seed % 3 == 0),
        inflight=args.inflight,
    )
    if args.state_machine:
        options.state_machine = load_state_machine(args.state_machine)
    sim = Simulation(seed, options)
    calls: dict[str, int] = {}  # how often the mutant's seams were called
    try:
        with mutant(args.mutant) as calls:
            sim.run()
    except (Violation, Exception) as exc:  # any exception is a failed history, with its trace
        trace = "\n".join(sim.trace_lines)
        return seed, f"seed {seed} ({peers} peers): {exc}\n--- last events ---\n{trace}", sim.steps, calls
    return seed, None, sim.steps, calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmq-raft-sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="run this one seed (replay)")
    parser.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--peers", type=int, choices=range(3, 8), help="cluster size (default: 3 and 5)")
    parser.add_argument("--inflight", type=int, default=16, help="AppendEntries in flight per follower")
    parser.add_argument(
        "--original-followers", action="store_true", help="always mix in original-style followers"
    )
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--state-machine", metavar="MODULE:CLASS")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--mutant", choices=sorted(MUTANTS), help="run against a deliberately broken node: must fail"
    )
    args = parser.parse_args(argv)

    seeds = (
        [args.seed] if args.seed is not None else list(range(args.first_seed, args.first_seed + args.seeds))
    )
    failures: list[str] = []
    total_steps = 0
    fail_fast = args.mutant is not None  # a mutant only has to be caught once
    results: list[tuple[int, str | None, int, dict[str, int]]] = []
    if len(seeds) == 1 or args.jobs <= 1:
        for seed in seeds:
            results.append(run_one(seed, args))
            if fail_fast and results[-1][1]:
                break
    else:
        pool = ProcessPoolExecutor(max_workers=args.jobs)
        try:
            for result in pool.map(run_one, seeds, [args] * len(seeds), chunksize=4):
                results.append(result)
                if fail_fast and result[1]:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    seam_calls: Counter[str] = Counter()
    for _seed, failure, steps, calls in results:
        total_steps += steps
        seam_calls.update(calls)
        if failure:
            failures.append(failure)
    for failure in failures:
        print(failure, file=sys.stderr)
    if args.mutant and not failures:
        print(f"mutant {args.mutant} not caught; its seams were called: {dict(seam_calls)}", file=sys.stderr)
        for seam in sorted(seam for seam, n in seam_calls.items() if not n):
            print(f"  {seam} was never called: the mutant tests nothing there", file=sys.stderr)
    label = f" against mutant {args.mutant}" if args.mutant else ""
    ran = len(results)
    print(
        f"{ran} histories{label}, {total_steps} steps: {ran - len(failures)} passed, {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
