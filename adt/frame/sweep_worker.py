"""One sweep worker of a shared Optuna study: ``python -m adt.frame.sweep_worker spec.json``.

Start it N times with the same spec (same ``study_name``, ``storage`` and ``budget``), on one machine or
several (with a shared ``out_dir`` and a shared MLflow store, ``MLFLOW_TRACKING_URI``): together the
workers finish exactly ``budget`` trials and register the best model once
(:func:`adt.frame.shared_study.run_budget`, :func:`adt.frame.shared_study.registered_elsewhere`). Prints the worker's
result as one JSON line: trials in the study, trials run here, best trial and value, model and champion URIs.

The spec (JSON)::

    {"train_dirs": ["<shard folder>", ...],
     "val": [{"x": "<features .npy>", "reference": {"BD": [onset seconds...], ...}}, ...],
     "stats": "<TrainingStats folder>", "out_dir": "<trial checkpoints>",
     "study_name": "transcriber", "storage": "postgresql+psycopg2://user@host/optuna",
     "budget": 8, "n_trials": 8, "register": true, "stage": "transcriber",
     "architectures": ["frame_crnn"], "config": {"epochs": 3, ...}}

Optional: ``pruner_startup_trials``, ``pruner_warmup_epochs``, ``run_name`` and ``run_params`` (the worker's MLflow
run), ``workers`` (processes this worker runs on its machine, default 1: :func:`adt.frame.sweep.run_sweep`),
``parent_pid`` (the worker exits when that process is gone: a helper), ``init_path`` (a checkpoint every
trial fine-tunes).
:func:`adt.frame.sweep.run_sweep` writes such a spec for its own helpers (``helper-spec.json``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from adt.features.stats import TrainingStats
from adt.frame.checkpoint import FRAME_CRNN
from adt.frame.recipe import TrainConfig
from adt.frame.sweep import run_sweep
from adt.parallel import die_with_parent


def run(spec: dict) -> dict:
    """Run :func:`adt.frame.sweep.run_sweep` as ``spec`` says; returns the summary printed by :func:`main`."""
    if spec.get("parent_pid"):  # a helper of run_sweep: it ends with the sweep that started it
        die_with_parent(int(spec["parent_pid"]))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("config", {}).items()
                            if k in fields})
    val = [(Path(v["x"]), {c: np.asarray(t, dtype=float) for c, t in v["reference"].items()}) for v in spec["val"]]
    budget = spec.get("budget")
    t0 = time.perf_counter()
    result = run_sweep([Path(d) for d in spec["train_dirs"]], val, spec["out_dir"],
                       n_trials=int(spec.get("n_trials") or budget), budget=budget, config=config,
                       architectures=tuple(spec.get("architectures", (FRAME_CRNN,))),
                       study_name=spec.get("study_name", "transcriber"), storage=spec.get("storage") or None,
                       stats=TrainingStats.load(spec["stats"]) if spec.get("stats") else None,
                       register=bool(spec.get("register", False)), stage=spec.get("stage", "transcriber"),
                       pruner_startup_trials=spec.get("pruner_startup_trials"),
                       pruner_warmup_epochs=int(spec.get("pruner_warmup_epochs") or 0),
                       run_name=spec.get("run_name"), run_params=spec.get("run_params"),
                       workers=int(spec.get("workers") or 1), log=lambda msg: print(msg, flush=True),
                       init_path=spec.get("init_path"), parent_run_id=spec.get("parent_run_id"))
    return {"study": result.study_name, "trials_in_study": result.n_trials, "ran_here": len(result.trial_run_ids),
            "best_trial": result.best_trial, "best_value": result.best_value, "model_uri": result.model_uri,
            "champion_uri": result.champion_uri, "seconds": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m adt.frame.sweep_worker spec.json")
    print("RESULT " + json.dumps(run(json.loads(Path(argv[0]).read_text()))), flush=True)


if __name__ == "__main__":
    main()
