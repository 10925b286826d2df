"""Rhythm: beats and tatums, conflict/far statistics, drum scores and the skip-bigram LM."""


from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from adt.atomic import atomic_path
from adt.cache import StageCache, cache_key
from adt.config import data_dir
from pipelines.assets.common import progress, read_onsets, read_tracks, safe_name
from pipelines.resources import AdtSettings


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


@dg.asset(group_name="rhythm", code_version="2",
          description="Beats per track with their bar position: madmom RNN beat activations + DBN tracking at "
                      "100 fps, bar positions from madmom's downbeat tracker, on the mixture or its separated drum "
                      "stem (AdtSettings.beat_input) or the drum-only recording; plus ground-truth beats. The "
                      "tracker is scored against ground truth per dataset with mir_eval.")
def beats(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, drum_stems: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.audio import read_audio
    from adt.rhythm.beats import bar_positions, beat_scores, track_beats, track_downbeats

    if settings.beat_input not in ("mix", "separated"):
        raise dg.Failure(f"beat_input must be 'mix' or 'separated', got {settings.beat_input!r}")
    df = read_tracks(tracks)
    gt = pd.read_parquet(tracks["gt_beats"])
    rows, skipped, scores = [], [], []
    for i, t in enumerate(df.itertuples(), 1):
        if isinstance(t.mix_path, str):
            variant = settings.beat_input
            audio_path = drum_stems["stems"][t.track_id] if variant == "separated" else t.mix_path
        else:
            variant, audio_path = "drums", t.drum_path
        cached = (data_dir() / "beats_madmom" / "2" / tracks["dataset_keys"][t.dataset] / variant
                  / f"{safe_name(t.track_id)}.npy")
        try:
            if not cached.is_file():
                audio, sr = read_audio(audio_path, mono=True)
                est = track_beats(audio, sr)
                table = np.stack([est, bar_positions(est, track_downbeats(audio, sr))], axis=1)
                with atomic_path(cached, suffix=".npy") as tmp:
                    np.save(tmp, table)
            table = np.load(cached)
        except Exception as exc:  # one bad track is reported, not fatal
            context.log.warning(f"{t.track_id}: beat tracking failed: {exc}")
            skipped.append(f"{t.track_id}: {exc}")
            continue
        if len(table) < 2:
            skipped.append(f"{t.track_id}: fewer than 2 beats found")
        rows += [(t.track_id, "madmom", float(b), int(p)) for b, p in table]
        ref = gt.loc[gt.track_id == t.track_id, "time_s"].to_numpy()
        if len(ref) >= 2:
            scores.append({"dataset": t.dataset, **beat_scores(ref, table[:, 0])})
        progress(context.log, "beat-tracked", i, len(df))
    rows += [(tid, "ground_truth", float(b), int(p)) for tid, b, p in zip(gt.track_id, gt.time_s, gt.position)]
    out = pd.DataFrame(rows, columns=["track_id", "source", "time_s", "position"])
    key = cache_key("beats", "2", tracks["key"], settings.beat_input,
                    drum_stems["key"] if settings.beat_input == "separated" else None)
    path = data_dir() / "beats" / key / "beats.parquet"
    _write_parquet(out, path)
    by_dataset = pd.DataFrame(scores).groupby("dataset").mean(numeric_only=True).round(4) if scores else pd.DataFrame()
    cache = StageCache("mlflow-logged", cache_key("beats", key))
    if cache.load() is None and not by_dataset.empty:
        with tracking.run("beats", "madmom-beats", params={"fps": 100, "input": settings.beat_input,
                                                           "method": "RNNBeatProcessor+DBN, DBNDownBeatTracking"}):
            for ds, row in by_dataset.iterrows():
                mlflow.log_metrics({f"{ds}.{k}": float(v) for k, v in row.items()})
            mlflow.log_table(by_dataset.reset_index(), "beat_scores.json")
        cache.save({})
    md = by_dataset.reset_index().to_markdown(index=False, floatfmt=".3f") if not by_dataset.empty else "no reference beats"
    return dg.Output({"key": key, "path": str(path), "skipped": skipped}, data_version=dg.DataVersion(key),
                     metadata={"beat_scores": dg.MetadataValue.md(md), "skipped": skipped, "rows": len(out),
                               "input": settings.beat_input})


@dg.asset(group_name="rhythm", code_version="2",
          description="Tatum times per track and beat source: AdtSettings.tatum_subdivisions (4 default; 3 or 6 for "
                      "triplet feels) per beat, interpolated between consecutive beats.")
def tatums(context: dg.AssetExecutionContext, settings: AdtSettings, beats: dict) -> dg.Output[dict]:
    from adt.rhythm.beats import tatums_from_beats

    n = settings.tatum_subdivisions
    b = pd.read_parquet(beats["path"])
    parts, skipped = [], []
    for (tid, source), group in b.groupby(["track_id", "source"], sort=True):
        try:
            t = tatums_from_beats(np.sort(group.time_s.to_numpy()), n)
        except ValueError as exc:
            skipped.append(f"{tid} ({source}): {exc}")
            continue
        parts.append(pd.DataFrame({"track_id": tid, "source": source, "time_s": t,
                                   "beat_index": np.arange(len(t)) // n, "subdivision": np.arange(len(t)) % n}))
    out = pd.concat(parts, ignore_index=True)
    key = cache_key("tatums", "2", beats["key"], n)
    path = data_dir() / "tatums" / key / "tatums.parquet"
    _write_parquet(out, path)
    if skipped:
        context.log.warning(f"no tatum grid for {len(skipped)} track/source pairs")
    return dg.Output({"key": key, "path": str(path), "skipped": skipped, "subdivisions": n},
                     data_version=dg.DataVersion(key),
                     metadata={"rows": len(out), "subdivisions": n, "skipped": skipped})


@dg.asset(group_name="rhythm", code_version="1",
          description="Tatum paper Table I: share of onsets lost to conflict and far, per dataset and beat source.")
def quantization_stats(context: dg.AssetExecutionContext, tracks: dict, onsets: dict, tatums: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.rhythm.quantization import quantize_onsets, summarize

    dataset_of = read_tracks(tracks).set_index("track_id").dataset
    ons = read_onsets(onsets)
    tat = pd.read_parquet(tatums["path"])
    flags = []
    for (tid, source), grid in tat.groupby(["track_id", "source"]):
        o = ons[ons.track_id == tid]
        if o.empty:
            continue
        f = quantize_onsets(o.time_s.to_numpy(), o.drum.to_numpy(), grid.time_s.to_numpy())
        f = f.assign(track_id=tid, source=source, dataset=dataset_of[tid], drum=o.drum.to_numpy())
        flags.append(f)
    flags = pd.concat(flags, ignore_index=True)
    table = summarize(flags, ["dataset", "source"])
    per_drum = summarize(flags, ["dataset", "source", "drum"])
    key = cache_key("quantization", "1", tatums["key"], onsets["key"])
    out_dir = data_dir() / "quantization_stats" / key
    _write_parquet(table, out_dir / "table1.parquet")
    _write_parquet(per_drum, out_dir / "per_drum.parquet")
    md = table.to_markdown(index=False, floatfmt=".4f")
    cache = StageCache("mlflow-logged", cache_key("quantization", key))
    if cache.load() is None:
        with tracking.run("quantization", "table1", params={"far_s": 0.05, "subdivisions": tatums["subdivisions"]}):
            mlflow.log_table(table, "table1.json")
            mlflow.log_table(per_drum, "per_drum.json")
        cache.save({})
    no_grid = sorted(set(ons.track_id) - set(tat.track_id))
    per_drum_md = per_drum[per_drum.source == "ground_truth"].to_markdown(index=False, floatfmt=".4f")
    return dg.Output({"key": key, "path": str(out_dir / "table1.parquet"), "table": table.to_dict("records"),
                      "per_drum": str(out_dir / "per_drum.parquet"), "skipped": no_grid},
                     data_version=dg.DataVersion(key),
                     metadata={"table1": dg.MetadataValue.md(md), "per_drum_ground_truth": dg.MetadataValue.md(per_drum_md),
                               "skipped": no_grid})


#: Datasets with ground-truth beats whose quantization is checked (one check each).
CHECKED_DATASETS = ("demo", "groove", "egmd", "slakh", "mdb")


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"quantization_within_threshold_{d}", asset=quantization_stats,
                             description=f"{d}: share of onsets lost to conflict or far with ground-truth beats "
                                         "stays below the dataset's threshold (AdtSettings.quantization_thresholds).")
           for d in CHECKED_DATASETS])
def quantization_within_threshold(settings: AdtSettings, quantization_stats: dict):
    """One check per dataset (Table I union ratio, ground-truth beats). A dataset absent
    from this run's tables passes with ``status: not in the tables``."""
    table = pd.DataFrame(quantization_stats["table"])
    union = table[table.source == "ground_truth"].set_index("dataset").union.to_dict()
    for dataset in CHECKED_DATASETS:
        limit = settings.quantization_thresholds.get(dataset, settings.max_unquantizable_ratio)
        name = f"quantization_within_threshold_{dataset}"
        if dataset not in union:
            yield dg.AssetCheckResult(check_name=name, passed=True,
                                      metadata={"status": "not in the tables", "threshold": limit})
            continue
        yield dg.AssetCheckResult(check_name=name, passed=bool(union[dataset] <= limit),
                                  metadata={"union_ratio": float(union[dataset]), "threshold": limit})
