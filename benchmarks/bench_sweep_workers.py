"""Sweep workers on one Optuna study in PostgreSQL: wall time of a trial budget with 1 worker vs N.

Starts a throwaway PostgreSQL server (:mod:`adt.postgres`), takes the first seconds of one real MDB Drums
track (the mirror, ``ADT_DATA_MIRROR``) as training and validation data, and for each worker count runs
``python -m adt.frame.sweep_worker`` that many times at once on a fresh study (Optuna and MLflow in
PostgreSQL, one thread per worker, no pruning so every trial does the same work). Prints per worker
count: wall seconds from the first start to the last exit, trials finished, trials per minute, the
split between workers, and the speed-up over one worker (docs/scale-out.md).

    python benchmarks/bench_sweep_workers.py --trials 8 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tiny_data(root: Path, seconds: int) -> dict:
    """The first ``seconds`` of MusicDelta_80sRock (tests' one-track data): a spec without storage."""
    from adt.features.stats import TrainingStats
    from tests.conftest import MDB_PREFIX, mdb_excerpt, mirror_dir

    name = "MusicDelta_80sRock"
    with zipfile.ZipFile(mirror_dir() / "mdb-drums-subset.zip") as z:
        track = {"wav": root / f"{name}_Drum.wav", "annotation": root / f"{name}_class.txt", "name": name}
        track["wav"].write_bytes(z.read(f"{MDB_PREFIX}audio/drum_only/{name}_Drum.wav"))
        track["annotation"].write_bytes(z.read(f"{MDB_PREFIX}annotations/class/{name}_class.txt"))
    item, ref = mdb_excerpt(track, root, seconds)
    TrainingStats.of_tracks([item]).save(root / "stats")
    return {"train_dirs": [str(root / "shards")], "stats": str(root / "stats"),
            "val": [{"x": str(item[0]), "reference": {c: t.tolist() for c, t in ref.items()}}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="the study's trial budget")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=12, help="seconds of the track")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    from adt import postgres

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp, postgres.server() as pg:
        root = Path(tmp)
        data = tiny_data(root, args.seconds)
        for n in args.workers:
            optuna_url = postgres.create_database(pg, f"optuna_{n}")
            mlflow_url = postgres.create_database(pg, f"mlflow_{n}")
            spec = {**data, "out_dir": str(root / f"trials_{n}"), "study_name": f"bench-{n}", "storage": optuna_url,
                    "budget": args.trials, "register": True, "pruner_startup_trials": 10 ** 6,
                    "config": {"epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": 4,
                               "num_threads": 1}}
            (root / f"spec_{n}.json").write_text(json.dumps(spec))
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                   "ADT_DATA_DIR": str(root / f"data_{n}"), "MLFLOW_TRACKING_URI": mlflow_url}
            t0 = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-m", "adt.frame.sweep_worker", str(root / f"spec_{n}.json")],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for _ in range(n)]
            outs = [p.communicate()[0] for p in procs]
            if os.environ.get("BENCH_VERBOSE"):
                print("\n".join(o[-6000:] for o in outs))
            wall = time.perf_counter() - t0
            if any(p.returncode for p in procs):
                raise SystemExit("a worker failed:\n" + "\n".join(o[-2000:] for o in outs))
            results = [json.loads(next(x for x in o.splitlines() if x.startswith("RESULT "))[7:]) for o in outs]
            import optuna

            trials = optuna.load_study(study_name=f"bench-{n}", storage=optuna_url).trials
            finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
            rows.append({"workers": n, "trials": len(finished), "wall_s": round(wall, 1),
                         "trials_per_min": round(60 * len(finished) / wall, 2),
                         "mean_trial_s": round(sum(t.user_attrs.get("seconds", 0) for t in finished)
                                               / len(finished), 1),
                         "split": [r["ran_here"] for r in results], "refused": len(trials) - len(finished),
                         "registered": sum(r["model_uri"] is not None for r in results)})
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["wall_s"]
    print(f"\n{'workers':>7} {'trials':>6} {'wall s':>7} {'trials/min':>10} {'mean trial s':>12} {'split':>8} "
          f"{'speed-up':>8}")
    for r in rows:
        print(f"{r['workers']:>7} {r['trials']:>6} {r['wall_s']:>7} {r['trials_per_min']:>10} {r['mean_trial_s']:>12} "
              f"{'+'.join(map(str, r['split'])):>8} {base / r['wall_s']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
