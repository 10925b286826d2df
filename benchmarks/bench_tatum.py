"""Tatum paper Table II on this project's data: frame CRNN + quantization vs. the tatum CRNN, unregularized and
regularized with the skip-bigram and the GRU LM; training time per model; Fig. 3.

Usage: .venv/bin/python benchmarks/bench_tatum.py [--profile demo] [--fresh [--tatum-trials N]]
       [--datasets demo,groove,mdb]

Runs the ``tatum_study`` stage and everything upstream of it (``adt.stages.run_stages``; every stage is cached under
``ADT_DATA_DIR``: after ``make demo`` only the study itself runs, and a second call recomputes nothing),
then prints Table II (tatum-level P/R/F in %, delta 0.2) per test split, with the grid match (the table)
and the +-50 ms time match (see ``adt.tatum.evaluate``). ``--fresh`` retrains the three tatum models into
``data/bench_tatum/<time>/`` instead of reading the cached study, and reports its wall time;
``--tatum-trials N`` then tunes each model's gamma/alpha with N Optuna trials (the profile's
``tatum.trials``; the first trial is the paper's weights).
On 2 CPU cores the demo profile trains each tatum model 96 steps (``TatumSettings.steps``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from adt.config import Settings

    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--datasets", help="comma-separated datasets (default: all available, as make demo)")
    parser.add_argument("--fresh", action="store_true", help="retrain the study instead of reading its cache")
    parser.add_argument("--tatum-trials", type=int, help="with --fresh: Optuna trials per tatum model")
    args = parser.parse_args()
    os.environ["ADT_PROFILE"] = args.profile
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from adt.config import Settings, data_dir, get_profile
    from adt.stages import run_stages
    from adt.tatum.study import run_study

    start = time.perf_counter()
    out = run_stages(Settings.from_env(profile=args.profile), until="transcriber" if args.fresh else "tatum_study",
                     datasets=args.datasets.split(",") if args.datasets else None, log=lambda m: None)
    print(f"profile {args.profile}, datasets {', '.join(out['raw'])}: upstream ready in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    if args.fresh:
        import pandas as pd

        out_dir = data_dir() / "bench_tatum" / time.strftime("%Y%m%d-%H%M%S")
        t0 = time.perf_counter()
        tatum = get_profile(args.profile).tatum
        if args.tatum_trials is not None:
            tatum = dataclasses.replace(tatum, trials=args.tatum_trials)
        study = run_study(lambda m: None, out["features"], pd.read_parquet(out["tatums"].path),
                          pd.read_parquet(out["onsets"].path), out["lm_bigram"], out["lm_gru"],
                          out["transcriber"], tatum, out_dir)
        print(f"study (3 tatum models + scoring) in {time.perf_counter() - t0:.0f} s")
    else:
        study = out["tatum_study"]
    if study.get("weight_trials"):
        print(f"loss weights tuned with {study['weight_trials']} trials per model: {study['weights']}")
    print(f"trained on {'+'.join(study['train_sets'])}: {study['train_tracks']} tracks, "
          f"{study['val_tracks']} for validation; GRU LM: {study['gru_lm']}")
    for method, seconds in study["train_seconds"].items():
        steps = study["histories"][method][-1]["step"]
        print(f"  {method}: {seconds:.0f} s for {steps} steps ({seconds / steps:.2f} s/step), "
              f"best validation F {100 * study['best_val_f'][method]:.1f}%")
    for key, md in study["markdown"].items():
        test, match = key.split(".")
        print(f"\n== Table II, test split {test}, {'grid match' if match == 'grid' else '+-50 ms time match'} "
              f"(%) ==\n{md}")
    if study["skipped"]:
        print(f"\nskipped: {len(study['skipped'])} (first: {study['skipped'][:3]})")
    print(f"\nFig. 3: {study['fig3']}\nresults: {study['results']}\nMLflow run {study['run_id']}")


if __name__ == "__main__":
    main()
