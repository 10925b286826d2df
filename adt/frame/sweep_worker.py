"""One sweep worker of a shared Optuna study: ``python -m adt.frame.sweep_worker spec.json``.

Start it N times with the same spec (same ``study_name``, ``storage`` and ``budget``), on one machine or
several: together the workers finish exactly ``budget`` trials and register the best model once
(:func:`adt.frame.shared_study.run_budget`, :func:`adt.frame.shared_study.registered_elsewhere`). Prints the
worker's result as one JSON line: trials in the study, trials run here, best trial and value, model and champion
URIs; the worker that registered the model adds the asset check's verdict (``not_worse_than_shipped``: it finds
onsets and is not worse than the shipped transcriber on the same validation data, :func:`adt.frame.shipped.not_worse`)
and ``shipped_val_f``, and warns when it fails.

Workers share no folder: each needs only the stores' URLs, the Optuna ``storage`` (PostgreSQL) and
``MLFLOW_TRACKING_URI`` (an MLflow tracking server with proxied artifact storage, ``mlflow server
--artifacts-destination ...``), and its own data folder (``ADT_DATA_DIR``) holding the inputs. Each trial's
checkpoint, and its per-epoch checkpoints while it runs, go to its MLflow run; a worker fetches from there the best
checkpoint it did not train, and a retry of a dead worker's trial resumes its last stored epoch
(:mod:`adt.frame.trial_store`). So one spec serves every machine when its paths are relative: relative paths
(``train_dirs``, ``val`` ``x``, ``stats``, ``out_dir``, ``init_path``) are read under the worker's own
``ADT_DATA_DIR``, where each worker builds the same inputs (deterministic and content-keyed: the features stage
from the same mirror and settings, or a copy). Absolute paths are used as they are (the helpers that
:func:`adt.frame.sweep.run_sweep` starts on its own machine).

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
trial fine-tunes), ``heartbeat`` (``[interval, grace]`` seconds of the trials' Optuna heartbeats: a dead worker's
trial is retried once ``grace`` passed without one; default ``[60, 180]``, :mod:`adt.frame.shared_study`),
``inputs_key`` (names the inputs in the per-epoch checkpoints' fingerprint; default: the spec's relative paths
when ``train_dirs`` and ``val`` are all relative, so that workers resume each other's trials, else their paths).
:func:`adt.frame.sweep.run_sweep` writes such a spec for its own helpers (``helper-spec.json``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from adt.cache import cache_key
from adt.config import data_dir
from adt.features.stats import TrainingStats
from adt.frame.checkpoint import FRAME_CRNN
from adt.frame.recipe import TrainConfig
from adt.frame.shipped import SHIPPED_F_TAG, not_worse
from adt.frame.sweep import run_sweep
from adt.parallel import die_with_parent


def local(path: str | None) -> Path | None:
    """A spec path on this worker: a relative one under ``ADT_DATA_DIR`` (:func:`adt.config.data_dir`), an
    absolute one as it is; None stays None."""
    if path is None or path == "":
        return None
    return Path(path) if Path(path).is_absolute() else data_dir() / path


def inputs_key(spec: dict) -> str | None:
    """The spec's ``inputs_key``, else, when ``train_dirs`` and every ``val`` ``x`` are relative paths, a key of
    those paths (the same on every worker), else None (the fingerprint names the paths)."""
    if spec.get("inputs_key"):
        return str(spec["inputs_key"])
    names = [*spec["train_dirs"], *(v["x"] for v in spec["val"])]
    if any(Path(n).is_absolute() for n in names):
        return None
    return cache_key("relative inputs", list(spec["train_dirs"]), [v["x"] for v in spec["val"]])


def run(spec: dict) -> dict:
    """Run :func:`adt.frame.sweep.run_sweep` as ``spec`` says; returns the summary printed by :func:`main`.

    Raises:
        ValueError: the spec lacks ``train_dirs``, ``val`` or ``out_dir``, or names a ``heartbeat`` that is not two
            positive integers.
    """
    missing = [k for k in ("train_dirs", "val", "out_dir") if not spec.get(k)]
    if missing:
        raise ValueError(f"the sweep spec lacks {', '.join(missing)}")
    heartbeat = spec.get("heartbeat")
    if heartbeat is not None and (len(heartbeat) != 2 or not all(isinstance(v, int) and v > 0 for v in heartbeat)):
        raise ValueError(f"heartbeat must be [interval, grace] in whole seconds > 0, got {heartbeat!r}")
    if spec.get("parent_pid"):  # a helper of run_sweep: it ends with the sweep that started it
        die_with_parent(int(spec["parent_pid"]))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("config", {}).items()
                            if k in fields})
    val = [(local(v["x"]), {c: np.asarray(t, dtype=float) for c, t in v["reference"].items()}) for v in spec["val"]]
    budget = spec.get("budget")
    t0 = time.perf_counter()
    result = run_sweep([local(d) for d in spec["train_dirs"]], val, local(spec["out_dir"]),
                       n_trials=int(spec.get("n_trials") or budget), budget=budget, config=config,
                       architectures=tuple(spec.get("architectures", (FRAME_CRNN,))),
                       study_name=spec.get("study_name", "transcriber"), storage=spec.get("storage") or None,
                       stats=TrainingStats.load(local(spec["stats"])) if spec.get("stats") else None,
                       register=bool(spec.get("register", False)), stage=spec.get("stage", "transcriber"),
                       pruner_startup_trials=spec.get("pruner_startup_trials"),
                       pruner_warmup_epochs=int(spec.get("pruner_warmup_epochs") or 0),
                       run_name=spec.get("run_name"), run_params=spec.get("run_params"),
                       workers=int(spec.get("workers") or 1), log=lambda msg: print(msg, flush=True),
                       init_path=local(spec.get("init_path")), parent_run_id=spec.get("parent_run_id"),
                       inputs_key=inputs_key(spec), heartbeat=tuple(heartbeat) if heartbeat else None)
    out = {"study": result.study_name, "trials_in_study": result.n_trials, "ran_here": len(result.trial_run_ids),
           "best_trial": result.best_trial, "best_value": result.best_value, "model_uri": result.model_uri,
           "champion_uri": result.champion_uri, "model_path": result.model_path,
           "seconds": round(time.perf_counter() - t0, 2)}
    if result.model_uri:  # registered here: the asset check's rule, as no Dagster check runs on a standalone sweep
        out["not_worse_than_shipped"], meta = not_worse(float(result.best_value), result.shipped)
        out["shipped_val_f"] = result.shipped.get(SHIPPED_F_TAG)
        if not out["not_worse_than_shipped"]:
            print(f"WARNING: {result.model_uri} fails the not_worse_than_shipped rule ({json.dumps(meta)}): "
                  "adt transcribe uses the shipped transcriber while it is worse", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m adt.frame.sweep_worker spec.json")
    try:
        spec = json.loads(Path(argv[0]).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{argv[0]}: not a readable JSON sweep spec ({exc})") from exc
    print("RESULT " + json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
