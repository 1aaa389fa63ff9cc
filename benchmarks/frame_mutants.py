"""Differential mutants in bulk: valid frames of every kind (tests/test_rans_limits.py),
mutated with the CRC re-sealed, through the native decoder (every kernel), `frame_info` and
the pure-Python reference. Any disagreement, or any exception other than CorruptDataError,
stops the run with the frame's bytes. docs/SECURITY.md quotes its counts.

    python benchmarks/frame_mutants.py 20000            # ~25 s on a 2-core box
    python benchmarks/frame_mutants.py 100000 --seed 5000000
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_rans_limits import MUTATIONS, _sample_frames, mutate, native_and_reference_agree  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=1_000_000, help="first seed; mutant i uses seed + i")
    args = parser.parse_args()
    outcomes = collections.Counter()
    for i in range(args.count):
        rng = np.random.default_rng(args.seed + i)
        how = MUTATIONS[i % len(MUTATIONS)]
        frame, ctx = _sample_frames(rng)
        mutated, ctx = mutate(rng, frame, ctx, how, int(rng.integers(1, 4)))
        outcomes[how, native_and_reference_agree(mutated, ctx)] += 1
    print(f"{args.count:,} mutants from seed {args.seed}: no disagreement")
    for (how, accepted), n in sorted(outcomes.items()):
        print(f"  {how:7} {'accepted' if accepted else 'rejected'}: {n:,}")


if __name__ == "__main__":
    main()
