"""Headless materialization of the whole graph (``make demo``).

Runs the defined jobs as runs of the code location (:mod:`pipelines.launch`: they show in the UI's
Overview timeline and job history and can be re-executed there), each
only for what is stale or missing (:mod:`pipelines.plan`: Dagster's code and data versions, plus the
settings); a warm run with nothing changed launches no run at all:

1. ``adt_kit_catalogue``; ``adt_raw_datasets`` for every dataset partition that can be
   had (:func:`adt.data.tables.available_datasets`): the generated demo corpus always, the others
   when their files are in ``data/downloads`` or the ``ADT_DATA_MIRROR`` folder, or
   (small ones only) when their official URL answers;
2. ``adt_downstream``: every other asset and the asset checks;
3. print the 3-class zero-shot matrix and where the results are (each MLflow experiment's link).

The console gets one line per step (:mod:`pipelines.console`); the rest is in each run's event log.

Usage: ``python -m pipelines.materialize [--profile NAME] [--datasets demo,groove,mdb,...] [--force]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time


def run_all(profile: str, datasets: list[str] | None = None, instance=None, force: bool = False,
            echo=print) -> dict:
    """Materialize what is stale or missing for ``profile`` through the defined jobs; returns each
    asset's current value by name (loaded from storage when nothing had to run).

    Holds the data folder's lock throughout (:mod:`adt.lock`: one writer per data folder), but with
    ``ADT_EXECUTOR=celery``: the steps then run in the Celery workers, whose launcher holds it
    (:mod:`pipelines.celery_workers`).

    Args:
        force: materialize every asset (their caches still spare recomputation).
        echo: where the one-line-per-run progress goes.

    Raises:
        RuntimeError: a run failed (its error is in the Dagster event log), another process writes
            this data folder (``adt.lock.DataFolderBusy``, naming it), or ``datasets`` names no dataset.
    """
    from adt.lock import data_lock
    from pipelines.definitions import EXECUTOR

    if EXECUTOR.name == "celery":
        return _run_all(profile, datasets, instance, force, echo)
    with data_lock(f"materialize --profile {profile}"):
        return _run_all(profile, datasets, instance, force, echo)


def dataset_lines(profile: str, chosen: list[str] | None, available: list[str]) -> tuple[list[str], list[str]]:
    """Which datasets ``make demo`` ingests, and the lines saying so (pure: no I/O).

    Args:
        chosen: the ``--datasets`` names, or None (every available one).
        available: :func:`adt.data.tables.available_datasets` (of the chosen ones, when chosen).

    Returns:
        ``(datasets, lines)``. Without a choice: the available datasets, the others named "not reachable".
        With one: the chosen datasets (the unchosen ones are not mentioned), and a warning naming each chosen
        one that cannot be had now (its ``raw_dataset`` run still tries, and its error says why).

    Raises:
        RuntimeError: a chosen name is no dataset (named, with the known ones).
    """
    from adt.data.datasets import DATASETS

    unknown = [d for d in chosen or [] if d not in DATASETS]
    if unknown:
        raise RuntimeError(f"--datasets: no dataset {', '.join(unknown)} (known: {', '.join(DATASETS)})")
    if chosen is None:
        missing = [d for d in DATASETS if d not in available]
        return list(available), [f"profile {profile}; datasets: {', '.join(available)}"
                                 + (f" (not reachable: {', '.join(missing)}; set ADT_DATA_MIRROR to a folder "
                                    "holding their archives)" if missing else "")]
    chosen = list(dict.fromkeys(chosen))
    lines = [f"profile {profile}; datasets: {', '.join(chosen)} (chosen with --datasets)"]
    absent = [d for d in chosen if d not in available]
    if absent:
        lines.append(f"warning: {', '.join(absent)}: not in data/downloads or ADT_DATA_MIRROR and no URL answers; "
                     "their raw_dataset runs will fail unless the files appear")
    return chosen, lines


def _run_all(profile: str, datasets: list[str] | None, instance, force: bool, echo) -> dict:
    import dagster as dg

    from adt.config import Settings
    from adt.data.tables import available_datasets
    from pipelines.automation import fail_dead_runs
    from pipelines.console import failure_line
    from pipelines.definitions import defs, downstream_job
    from pipelines.launch import execute
    from pipelines.plan import SETTINGS_TAG, settings_fingerprint, to_materialize

    settings = Settings.from_env(profile=profile)
    mirror = settings.get_mirror()
    if instance is None:
        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    for run_id in fail_dead_runs(instance):
        echo(f"run {run_id} of a dead process marked failed")
    datasets, lines = dataset_lines(profile, datasets or None, available_datasets(mirror, datasets or None))
    for line in lines:
        echo(line)
    fingerprint = settings_fingerprint(settings)
    run_config = {"resources": {"settings": {"config": {"profile": profile, "mirror": mirror or ""}}},
                  "loggers": {"adt_console": {}}}  # one line per step (pipelines.console)
    tags = {"adt/profile": profile, SETTINGS_TAG: fingerprint}
    runs: list[str] = []

    corrupt = corrupt_outputs(echo)

    def launch(job: str, keys: list, partition: str | None = None, absent_checks: frozenset = frozenset()) -> None:
        plan = ({k: "forced" for k in keys} if force
                else to_materialize(instance, defs, keys, fingerprint, partition, corrupt=corrupt))
        if not plan:
            return
        label = f"{job}[{partition}]" if partition else job
        echo(f"{label}: {len(plan)} of {len(keys)} assets to materialize ("
             + ", ".join(f"{k.to_user_string()}: {why}" for k, why in list(plan.items())[:3])
             + (", ..." if len(plan) > 3 else "") + ")")
        checks = [c for c in graph.asset_check_keys if c.asset_key in plan and c not in absent_checks]
        result = execute(job, instance, run_config, asset_selection=list(plan), check_selection=checks,
                         tags={**tags, **({"dagster/partition": partition} if partition else {})})
        if not result.success:
            errors = [f"{e.step_key}: {line}" for e in result.get_step_failure_events() if (line := failure_line(e))]
            raise RuntimeError(f"{label} failed: {'; '.join(errors) or 'see the event log'} "
                               f"(Dagster run {result.run_id})")
        runs.append(result.run_id)

    graph = defs.resolve_asset_graph()
    launch("adt_kit_catalogue", [dg.AssetKey("kit_catalogue")])
    for name in datasets:
        launch("adt_raw_datasets", [dg.AssetKey("raw_dataset"), dg.AssetKey("dataset_tables")], partition=name)
    downstream = sorted(downstream_job.selection.resolve(graph))
    launch(downstream_job.name, downstream, absent_checks=checks_of_absent_datasets(datasets))
    if not runs:
        echo("nothing stale or missing: no run")
    outputs = {"datasets": datasets, "run_ids": runs, "run_id": runs[-1] if runs else None,
               "recorded": instance.is_persistent}  # an ephemeral instance (no DAGSTER_HOME) keeps no runs
    # the loader's console logger (made inside it, on stderr) prints a DEBUG line per value: not on the console
    with contextlib.redirect_stderr(io.StringIO()), defs.get_asset_value_loader(instance) as loader:
        for key in downstream:  # every stage's typed result (adt.stages.STAGES)
            outputs[key.to_user_string()] = loader.load_asset_value(key)
    outputs["checks"], outputs["warned"] = {}, []
    for check in graph.asset_check_keys:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check]).get(check)
        passed = getattr(record.evaluation, "passed", None) if record is not None else None
        if passed is not None:  # planned but never executed (a dataset absent): no result
            outputs["checks"][check.name] = passed
            if not passed and getattr(record.evaluation, "severity", None) == dg.AssetCheckSeverity.WARN:
                outputs["warned"].append(check.name)  # a finding to read, not a broken output
    # the registered models are checked on every run, warm ones included: their files are not the stages' caches
    from adt.evaluation.registered import alias_reproduces

    outputs["registered"] = {alias: alias_reproduces(alias) for alias in ("champion", "lite")}
    for alias, check in (("champion", "champion_reproduces"), ("lite", "lite_reproduces")):
        outputs["checks"][check] = outputs["registered"][alias][0]
    return outputs


def checks_of_absent_datasets(datasets: list[str]) -> frozenset:
    """The per-dataset checks (``conflict_far_<dataset>``, :mod:`pipelines.checks`) of the datasets this run
    does not ingest: not selected, so that Dagster neither runs them nor warns that they "did not yield expected
    outputs"; they show as not executed."""
    import dagster as dg

    from pipelines.checks import CHECKED_DATASETS

    return frozenset(dg.AssetCheckKey(dg.AssetKey("quantization_stats"), f"conflict_far_{d}")
                     for d in CHECKED_DATASETS if d not in datasets)


def corrupt_outputs(echo) -> dict[str, str]:
    """Asset name -> the first of its cached files that is not what was written (:func:`adt.cache.verify`), each
    named on the console; those assets run again, and their stage recomputes the file."""
    from adt.cache import verify

    out: dict[str, str] = {}
    for item in verify():
        echo(f"corrupt cached output: {item}")
        out.setdefault(item.stage, f"{item.path} ({item.why})")
    return out


def transcriber_line(transcriber) -> str:
    """Which transcriber ``adt transcribe`` uses after this run, and why (the sweep's best against the shipped
    model on the same validation data, :mod:`adt.frame.shipped`); ``transcriber``: the stage's result."""
    own, shipped = transcriber.best_val_f, (transcriber.shipped or {}).get("shipped_val_f")
    start = transcriber.started_from
    start = "from scratch" if start == "scratch" else f"fine-tuned from {start.split(' (sha256')[0]}"
    line = f"transcriber: {transcriber.model_uri} ({start}), validation F {own:.3f}"
    if shipped is None:
        return line + " (adt transcribe uses the champion)"
    used = "the champion" if own >= shipped else "the shipped model"
    return line + f", shipped model {shipped:.3f}: adt transcribe uses {used}"


def summary(out: dict, seconds: float) -> str:
    """What ``make demo`` prints at the end: the 3-class matrix, where every table and figure is, and each
    MLflow experiment with its link (about 30 lines)."""
    import mlflow

    from adt import tracking
    from adt.config import data_dir

    lines = ["", "== Zero-shot matrix: 3-class (BD, SD, HH) micro F-measure, 50 ms ==",
             out["zero_shot_matrix"].markdown["f_3class"], ""]
    separation = out["drum_stems"].study if out.get("drum_stems") else None
    if separation:
        lines.append(f"separator: {separation['best']} (best validation drums SDR; Tables 2 and 3 in adt/separation)")
    registered = out.get("registered", {})
    broken = {alias: meta for alias, (ok, meta) in registered.items() if not ok}
    if "champion" in broken:  # never name a model that does not load as the one adt transcribe uses
        lines.append(f"transcriber: the registry's champion does not load or reproduce its figure "
                     f"({broken['champion'].get('error') or broken['champion']}); adt transcribe refuses it "
                     "(--model with a checkpoint or the shipped model still works)")
    else:
        lines.append(transcriber_line(out["transcriber"]))
    gru, bigram = out.get("lm_gru"), out.get("lm_bigram")
    gru3 = gru.perplexity_k3.get("test") if gru else None
    bigram3 = bigram.perplexity.get("k3", {}).get("test") if bigram else None
    if gru3 is not None and bigram3 is not None:
        lines.append(f"language models: test perplexity (BD, SD, HH) GRU {gru3:.3f}, skip-bigram {bigram3:.3f}")
    trimmed = out.get("trimmed_transcriber")
    if "lite" in broken:
        lines.append(f"lite transcriber: the registry's lite model does not load or reproduce its figure "
                     f"({broken['lite'].get('error') or broken['lite']})")
    elif trimmed and trimmed.model_uri:
        lines.append(f"lite transcriber: {trimmed.model_uri} (adt transcribe --model lite; Table 1 in adt/trimming)")
    lines.append("Tables I, II and 1-3, the 5-class matrix, Fig. 3 and Figure 2: in MLflow and in each asset's "
                 "Dagster metadata")
    checks, warned = out.get("checks", {}), sorted(out.get("warned", []))
    failed = sorted(name for name, ok in checks.items() if not ok and name not in warned)
    lines.append(f"asset checks: {len(checks) - len(failed) - len(warned)} passed, {len(failed)} failed"
                 + (f" ({', '.join(failed)})" if failed else "")
                 + (f", {len(warned)} warned ({', '.join(warned)})" if warned else ""))
    tracking.setup()
    experiments = sorted((e.name for e in mlflow.search_experiments()
                          if e.name.startswith(tracking.EXPERIMENT_PREFIX + "/")))
    lines.append(f"\nMLflow ({tracking.tracking_uri()}; make ui serves it):")
    lines += [f"  {name:<20} {tracking.experiment_url(name.split('/', 1)[1])}" for name in experiments]
    if out.get("run_id") and out.get("recorded"):
        lines.append(f"Dagster (make ui): http://127.0.0.1:3000/runs/{out['run_id']}")
    lines.append(f"outputs under {data_dir()}; done in {seconds:.1f} s")
    return "\n".join(lines)


def quiet_libraries() -> None:
    """Optuna's line per trial and MLflow's INFO lines stay off the console (the trials are MLflow runs)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    from adt.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--datasets", help="comma-separated subset of demo,groove,egmd,slakh,enst,mdb,adtof "
                                           "(default: all available, see available_datasets)")
    parser.add_argument("--force", action="store_true",
                        help="materialize every asset, stale or not (caches still spare the work)")
    args = parser.parse_args(argv)
    os.environ["ADT_PROFILE"] = args.profile
    quiet_libraries()

    start = time.perf_counter()
    try:
        out = run_all(args.profile, args.datasets.split(",") if args.datasets else None, force=args.force,
                      echo=lambda line: print(line, flush=True))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(out, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
