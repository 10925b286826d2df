"""Sweep workers on one Optuna study in PostgreSQL: wall time of a trial budget with 1 worker vs N.

Starts a throwaway PostgreSQL server (:mod:`adt.postgres`), takes the first seconds of one real MDB Drums
track (the mirror, ``ADT_DATA_MIRROR``) as training and validation data, and for each worker count runs
``python -m adt.frame.sweep_worker`` that many times at once on a fresh study (one thread per worker, no pruning
so every trial does the same work). Prints per worker count: wall seconds from the first start to the last exit,
trials finished, trials per minute, the split between workers, trials refused as over budget, model versions
registered, and the speed-up over one worker (docs/scale-out.md).

Two setups:

* default: Optuna and MLflow in PostgreSQL, the data and ``out_dir`` shared by the workers (one folder);
* ``--stores``: the workers share no folder, only the services (issue 33): Optuna in PostgreSQL and an ``mlflow
  server`` on PostgreSQL with proxied artifacts (:func:`adt.tracking.server`; its artifact folder is never given to
  the workers, they get ``http://127.0.0.1:<port>``); each worker has its own data folder, where its inputs are
  built from the mirror, and one spec of relative paths (:mod:`adt.frame.sweep_worker`). A fresh server and
  registry per worker count, so ``registered`` counts that sweep's champion versions.

    python benchmarks/bench_sweep_workers.py --trials 8 --workers 1 2
    python benchmarks/bench_sweep_workers.py --stores --trials 6 --epochs 3 --workers 1 2 3
"""

from __future__ import annotations

import argparse
import contextlib
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


def tiny_data(root: Path, seconds: int, relative_to: Path | None = None) -> dict:
    """The first ``seconds`` of MusicDelta_80sRock (tests' one-track data) built in ``root``: a spec without
    storage, its paths relative to ``relative_to`` when given (a worker's data folder), else absolute."""
    from adt.features.stats import TrainingStats
    from tests.conftest import MDB_PREFIX, mdb_excerpt, mirror_dir

    name = "MusicDelta_80sRock"
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(mirror_dir() / "mdb-drums-subset.zip") as z:
        track = {"wav": root / f"{name}_Drum.wav", "annotation": root / f"{name}_class.txt", "name": name}
        track["wav"].write_bytes(z.read(f"{MDB_PREFIX}audio/drum_only/{name}_Drum.wav"))
        track["annotation"].write_bytes(z.read(f"{MDB_PREFIX}annotations/class/{name}_class.txt"))
    item, ref = mdb_excerpt(track, root, seconds)
    TrainingStats.of_tracks([item]).save(root / "stats")

    def name_of(path: Path) -> str:
        return str(path.relative_to(relative_to)) if relative_to is not None else str(path)

    return {"train_dirs": [name_of(root / "shards")], "stats": name_of(root / "stats"),
            "val": [{"x": name_of(Path(item[0])), "reference": {c: t.tolist() for c, t in ref.items()}}]}


def run_workers(specs: list[Path], envs: list[dict]) -> tuple[float, list[dict]]:
    """Start one ``sweep_worker`` per spec at once (spec ``k`` with environment ``k``, in the spec's folder); returns
    the wall seconds from the first start to the last exit and their RESULT lines."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "adt.frame.sweep_worker", str(spec)], cwd=spec.parent, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for spec, env in zip(specs, envs)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    if os.environ.get("BENCH_VERBOSE"):
        print("\n".join(o[-6000:] for o in outs))
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(o[-2000:] for o in outs))
    return wall, [json.loads(next(x for x in o.splitlines() if x.startswith("RESULT "))[7:]) for o in outs]


def figures(n: int, study: str, optuna_url: str, wall: float, results: list[dict], versions: int) -> dict:
    """One row: the study's finished trials, wall time, trials per minute, mean trial seconds, the split between
    the workers, trials refused (over budget) or failed, model versions registered; the cores and the machine's
    1-minute load average at the end (other work on a shared machine skews the figures)."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=optuna_url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    return {"workers": n, "trials": len(finished), "wall_s": round(wall, 1),
            "trials_per_min": round(60 * len(finished) / wall, 2),
            "mean_trial_s": round(sum(t.user_attrs.get("seconds", 0) for t in finished) / len(finished), 1),
            "split": [r["ran_here"] for r in results], "refused": len(trials) - len(finished),
            "best_trials": sorted({r["best_trial"] for r in results}), "registered": versions,
            "cores": len(os.sched_getaffinity(0)), "load_1min_after": round(os.getloadavg()[0], 2)}


def shared_folder(pg: str, root: Path, n: int, data: dict, args) -> dict:
    """The default setup for ``n`` workers: Optuna and MLflow in PostgreSQL, one data folder and ``out_dir``."""
    from adt import postgres

    optuna_url = postgres.create_database(pg, f"optuna_{n}")
    mlflow_url = postgres.create_database(pg, f"mlflow_{n}")
    spec = {**data, "out_dir": str(root / f"trials_{n}"), "study_name": f"bench-{n}", "storage": optuna_url,
            **common(args)}
    (root / f"spec_{n}.json").write_text(json.dumps(spec))
    env = {**worker_env(), "ADT_DATA_DIR": str(root / f"data_{n}"), "MLFLOW_TRACKING_URI": mlflow_url}
    wall, results = run_workers([root / f"spec_{n}.json"] * n, [env] * n)
    return figures(n, f"bench-{n}", optuna_url, wall, results, sum(r["model_uri"] is not None for r in results))


def stores_only(pg: str, root: Path, n: int, args) -> dict:
    """The ``--stores`` setup for ``n`` workers: a fresh ``mlflow server`` (its artifacts in a folder no worker is
    told), each worker in its own folder with its own data folder and inputs, one spec of relative paths."""
    import mlflow

    from adt import postgres, tracking

    optuna_url = postgres.create_database(pg, f"optuna_stores_{n}")
    with tracking.server(postgres.create_database(pg, f"mlflow_stores_{n}"), root / f"server_{n}") as (uri, _):
        folders = [root / f"stores_{n}" / f"worker{k}" for k in range(1, n + 1)]
        spec = None
        for folder in folders:  # each builds its inputs from the mirror, in its own data folder
            data = tiny_data(folder / "data" / "inputs", args.seconds, relative_to=folder / "data")
            spec = {**data, "out_dir": "trials", "study_name": f"stores-{n}", "storage": optuna_url, **common(args)}
            (folder / "spec.json").write_text(json.dumps(spec))
        envs = [{**worker_env(), "ADT_DATA_DIR": str(f / "data"), "MLFLOW_TRACKING_URI": uri} for f in folders]
        wall, results = run_workers([f / "spec.json" for f in folders], envs)
        client = mlflow.MlflowClient(tracking_uri=uri)
        versions = len(client.search_model_versions(f"name = '{tracking.MODEL_NAME}'"))
        row = figures(n, f"stores-{n}", optuna_url, wall, results, versions)
        row["champion"] = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version
    return row


def common(args) -> dict:
    """The spec fields every setup shares: budget, registration, no pruning, the tiny training."""
    return {"budget": args.trials, "register": True, "pruner_startup_trials": 10 ** 6,
            "config": {"epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": 4, "num_threads": 1}}


def worker_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="the study's trial budget")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=12, help="seconds of the track")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--stores", action="store_true",
                        help="workers in separate data folders sharing only PostgreSQL and an MLflow server")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    from adt import postgres

    rows = []
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sweep-")))
        pg = stack.enter_context(postgres.server())
        data = None if args.stores else tiny_data(root, args.seconds)
        for n in args.workers:
            rows.append(stores_only(pg, root, n, args) if args.stores else shared_folder(pg, root, n, data, args))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["wall_s"]
    print(f"\n{'workers':>7} {'trials':>6} {'wall s':>7} {'trials/min':>10} {'mean trial s':>12} {'split':>8} "
          f"{'versions':>8} {'speed-up':>8}")
    for r in rows:
        print(f"{r['workers']:>7} {r['trials']:>6} {r['wall_s']:>7} {r['trials_per_min']:>10} {r['mean_trial_s']:>12} "
              f"{'+'.join(map(str, r['split'])):>8} {r['registered']:>8} {base / r['wall_s']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
