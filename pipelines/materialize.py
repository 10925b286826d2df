"""Headless materialization of the whole graph (``make demo``).

1. ``raw_dataset`` and ``dataset_tables`` for every dataset partition that can be
   had (:func:`adt.data.tables.available_datasets`): the generated demo corpus always, the others
   when their files are in ``data/downloads`` or the ``ADT_DATA_MIRROR`` folder, or
   (small ones only) when their official URL answers;
2. every other asset in one run; the runs are recorded in the Dagster instance
   (``DAGSTER_HOME``), so the UI shows them;
3. print the zero-shot matrix and where the results are.

Usage: ``python -m pipelines.materialize [--profile NAME] [--datasets demo,groove,mdb,...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def run_all(profile: str, datasets: list[str] | None = None, instance=None) -> dict:
    """Materialize every asset for ``profile``; returns each asset's output value by name.

    Holds the data folder's lock throughout (:mod:`adt.lock`: one writer per data folder).

    Raises:
        RuntimeError: a run failed (its error is in the Dagster event log), or another process writes
            this data folder (``adt.lock.DataFolderBusy``, naming it).
    """
    from adt.lock import data_lock

    with data_lock(f"materialize --profile {profile}"):
        return _run_all(profile, datasets, instance)


def _run_all(profile: str, datasets: list[str] | None, instance) -> dict:
    import dagster as dg

    from adt.config import Settings
    from adt.data.tables import available_datasets
    from pipelines.assets.ingest import dataset_tables, kit_catalogue, raw_dataset
    from pipelines.definitions import ALL_ASSETS, ALL_CHECKS
    from pipelines.resources import AdtSettings

    mirror = Settings.from_env().get_mirror()
    resources = {"settings": AdtSettings(profile=profile, mirror=mirror or "")}
    if instance is None:
        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    from pipelines.automation import fail_dead_runs

    for run_id in fail_dead_runs(instance):
        print(f"run {run_id} of a dead process marked failed", flush=True)
    datasets = datasets or available_datasets(mirror)
    from adt.data.datasets import DATASETS

    missing = [d for d in DATASETS if d not in datasets]
    print(f"profile {profile}; datasets: {', '.join(datasets)}"
          + (f" (not reachable: {', '.join(missing)}; set ADT_DATA_MIRROR to a folder holding their archives)"
             if missing else ""), flush=True)
    tags = {"adt/profile": profile}
    result = dg.materialize([kit_catalogue], instance=instance, resources=resources, tags=tags, raise_on_error=False)
    if not result.success:
        raise RuntimeError(f"kit_catalogue failed: see the Dagster run {result.run_id}")
    for name in datasets:
        result = dg.materialize([raw_dataset, dataset_tables], partition_key=name, instance=instance, resources=resources,
                                tags=tags, raise_on_error=False)
        if not result.success:
            raise RuntimeError(f"raw_dataset/dataset_tables[{name}] failed: see the Dagster run {result.run_id}")
    downstream = [a for a in ALL_ASSETS if a not in (kit_catalogue, raw_dataset, dataset_tables)]
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS],
                            selection=dg.AssetSelection.assets(*downstream) | dg.AssetSelection.checks(*ALL_CHECKS),
                            instance=instance, resources=resources, tags=tags, raise_on_error=False)
    if not result.success:
        raise RuntimeError(f"materialization failed: see the Dagster run {result.run_id}")
    outputs = {"datasets": datasets, "run_id": result.run_id}
    for node in ("drum_stems", "beats", "tatums", "quantization_stats", "groove_scores", "drum_scores", "lm_bigram",
                 "lm_gru", "features", "transcriber", "architecture_study", "trimmed_transcriber", "zero_shot_matrix",
                 "tatum_study"):
        outputs[node] = result.output_for_node(node)
    outputs["tracks"] = result.output_for_node("unified_tables", "tracks")
    outputs["onsets"] = result.output_for_node("unified_tables", "onsets")
    outputs["checks"] = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    return outputs


def main(argv: list[str] | None = None) -> int:
    from adt.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--datasets", help="comma-separated subset of demo,groove,egmd,slakh,enst,mdb,adtof "
                                           "(default: all available, see available_datasets)")
    args = parser.parse_args(argv)
    os.environ["ADT_PROFILE"] = args.profile

    from adt import tracking
    from adt.config import data_dir

    start = time.perf_counter()
    try:
        out = run_all(args.profile, args.datasets.split(",") if args.datasets else None)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    matrix, transcriber = out["zero_shot_matrix"], out["transcriber"]
    separation = out.get("drum_stems", {}).get("study")
    if separation:
        print("\n== Separation (interleaved multitask paper, Tables 2 and 3; BSSEval v4 in dB, test renders) ==\n")
        print(separation["tables"]["table2"] + "\n\n" + separation["tables"]["table3"])
        print(f"\nchosen separator: {separation['best']} (best validation drums SDR)")
    print("\n== Zero-shot matrix ==\n")
    print("5-class micro F-measure (50 ms)\n" + matrix["markdown"]["f_5class"])
    print("\n3-class (BD, SD, HH) micro F-measure (50 ms)\n" + matrix["markdown"]["f_3class"])
    study = out.get("tatum_study")
    if study:
        print("\n== Tatum-level results (tatum paper Table II layout; tatum P/R/F, delta = 0.2) ==")
        for name, table in study["markdown"].items():
            if name.endswith(".grid"):
                print(f"\n{name[: -len('.grid')]} test split\n{table}")
        if study.get("fig3"):
            print(f"\nFig. 3 piano rolls: {study['fig3']}")
    trimmed = out.get("trimmed_transcriber")
    if trimmed:
        print("\n== Trimming (lottery paper Table 1; test error = 1 - 3-class micro F) ==\n")
        print(trimmed["table1"])
        print(f"\nFigure 2: {trimmed['figure']}; lite model: {trimmed['model_uri']} (adt transcribe --model lite)")
    print(f"\nMLflow: {tracking.tracking_uri()}  (make ui, then http://127.0.0.1:5000)")
    print("  experiments: adt/datasets, adt/separation, adt/beats, adt/quantization, adt/language_model, "
          "adt/transcriber, adt/trimming, adt/zero_shot, adt/tatum_study")
    print(f"  transcriber run {transcriber['run_id']}, registered model {transcriber['model_uri']}")
    print(f"  zero-shot run {matrix['run_id']}; tables and heatmaps in {matrix['path']}")
    print(f"  asset checks: {out['checks']}")
    print(f"Outputs under {data_dir()}; Dagster run {out['run_id']} (make ui to browse)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
