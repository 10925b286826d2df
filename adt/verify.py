"""``adt verify [STAGE ...]``: check that every cached output of a data folder is what its stage wrote
(:func:`adt.cache.verify`: the files of each stage manifest and the per-item records, XXH3-128), and say what
would be recomputed. Removes nothing: the stage that owns a corrupt file removes and recomputes it when it next
runs (``make demo`` runs it: its plan checks the same before it says "nothing stale").

Exit status: 0 all intact, 1 corrupt files found (listed), 2 bad input (an unknown stage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from adt.cache import FOLDER_STAGES, verify


def add_parser(sub) -> None:
    """The ``verify`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    v = sub.add_parser("verify", help="check the cached outputs of the data folder against their content hashes")
    v.add_argument("stages", nargs="*", metavar="STAGE",
                   help=f"only these stages' outputs (default all): {', '.join(sorted(set(FOLDER_STAGES.values())))}")
    v.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = Path(os.environ.get("ADT_DATA_DIR", "data")).resolve()
    if not root.is_dir():
        print(f"adt verify: no data folder at {root} (ADT_DATA_DIR): nothing to check", file=sys.stderr)
        return 0
    start = time.perf_counter()
    try:
        corrupt = verify(args.stages or None)
    except ValueError as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - start
    for item in corrupt:
        print(item)
    stages = sorted({item.stage for item in corrupt})
    print(f"{root}: {len(corrupt)} corrupt file(s) in {took:.1f} s"
          + (f"; the next run recomputes them in: {', '.join(stages)}" if corrupt else ": every cached output intact"),
          file=sys.stderr)
    return 1 if corrupt else 0
