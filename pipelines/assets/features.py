"""Features: input features and frame targets at 100 fps, shards of 4-s segments, training-set statistics.

The feature type (``AdtSettings.feature_type``: log mel or log filtered, see
``adt.features``) and target widening (``AdtSettings.target_widening``) are part
of every cache key. Training-set statistics (per-bin mean and std, per-class
onset counts and infrequency weights, thesis Sec. 5.2) are computed per training
dataset from the per-track arrays and summed for each training combination;
each combination's are saved as ``mean.npy``, ``std.npy``,
``infrequency_weights.npy`` and ``stats.json``.
"""


from pathlib import Path

import dagster as dg
import numpy as np

from adt.cache import StageCache, cache_key
from adt.config import Profile, data_dir
from adt.vocab import CLASSES_5
from pipelines.assets.common import progress, read_onsets, read_tracks, safe_name
from pipelines.resources import AdtSettings

FEATURES_VERSION = "2"


def feature_key(feature_type: str) -> str:
    """Folder name of a feature type and its parameters, e.g. ``log_mel-1a2b3c4d``."""
    from adt.features.spectrogram import feature_params

    return f"{feature_type}-{cache_key(feature_type, feature_params(feature_type))[:8]}"


def training_combinations(profile: Profile, available: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The profile's training-set combinations whose datasets all have a training split, plus all of them."""
    combos = [tuple(c) for c in profile.train_combinations if set(c) <= set(available)]
    if available and tuple(available) not in combos:
        combos.append(tuple(available))
    return combos


def training_stats_for(features: dict, combo: tuple[str, ...]) -> dict:
    """The saved statistics of a training combination (computed from its datasets' sums if new).

    Returns:
        ``{"dir", "key", "train_sets", "frames", "onsets", "infrequency_weights"}``; ``dir``
        holds ``mean.npy``, ``std.npy``, ``infrequency_weights.npy`` and ``stats.json``
        (load with ``adt.features.stats.TrainingStats.load``).

    Raises:
        dagster.Failure: a dataset of ``combo`` has no training split.
    """
    import json

    from adt.features.stats import TrainingStats

    per_dataset = features["training_stats"]["datasets"]
    missing = [d for d in combo if d not in per_dataset]
    if missing:
        raise dg.Failure(f"no training statistics for {missing}: they have no training split")
    key = cache_key("training_stats", FEATURES_VERSION, [per_dataset[d]["key"] for d in combo])
    cache = StageCache("training_stats", key)
    manifest = cache.load()
    if manifest is None:
        parts = [TrainingStats.from_json(json.loads(Path(per_dataset[d]["path"]).read_text())) for d in combo]
        stats = sum(parts[1:], parts[0])
        stats.save(cache.dir, train_sets=list(combo))
        weights = stats.infrequency_weights()
        manifest = cache.save({"dir": str(cache.dir), "train_sets": list(combo), "frames": stats.frames,
                               "onsets": dict(zip(CLASSES_5, stats.onsets.tolist())),
                               "infrequency_weights": dict(zip(CLASSES_5, weights.round(4).tolist()))})
    return manifest


def _stats_table(combos: dict) -> str:
    head = "| training sets | frames | " + " | ".join(f"{c} onsets (w)" for c in CLASSES_5) + " |"
    rows = [head, "|" + "---|" * (2 + len(CLASSES_5))]
    for name, m in combos.items():
        cells = [f"{m['onsets'][c]} ({m['infrequency_weights'][c]:.1f})" for c in CLASSES_5]
        rows.append(f"| {name} | {m['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


@dg.asset(group_name="features", code_version=FEATURES_VERSION,
          description="Input features of each track's drum signal (the separated stem for mixtures, else the drum "
                      "recording): log mel (tatum paper: 44.1 kHz, Hann 2048, hop 441, 80 bands 20 Hz-20 kHz) or log "
                      "filtered (thesis 5.1.1: 12 bands/octave around 440 Hz, 84 bins) per AdtSettings.feature_type; "
                      "5-class frame targets at 100 fps (optional target widening); training shards of 4-s segments "
                      "per dataset and split; per training combination: mean/std per bin and infrequency weights.")
def features(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, onsets: dict,
             drum_stems: dict) -> dg.Output[dict]:
    from adt.features.spectrogram import SEGMENT_FRAMES, check_feature_type, feature_params, features_file
    from adt.features.stats import TrainingStats
    from adt.features.targets import frame_targets
    from adt.atomic import save_array
    from adt.features.shards import write_shards

    ftype = settings.feature_type
    try:
        check_feature_type(ftype)
    except ValueError as exc:
        raise dg.Failure(f"AdtSettings.feature_type: {exc}") from None
    fkey, widening = feature_key(ftype), bool(settings.target_widening)
    y_suffix = "yw" if widening else "y"
    df = read_tracks(tracks)
    ons = read_onsets(onsets)
    stems = drum_stems["stems"]
    per_track, groups = {}, {}
    for i, t in enumerate(df.itertuples(), 1):
        source = stems.get(t.track_id) or t.drum_path
        variant = "separated" if t.track_id in stems else "drum"
        folder = data_dir() / "features" / FEATURES_VERSION / fkey / tracks["dataset_keys"][t.dataset] / variant
        if variant == "separated":
            folder = folder / drum_stems["model"].get("key", "pretrained")
        x_path = folder / f"{safe_name(t.track_id)}.x.npy"
        y_path = folder / f"{safe_name(t.track_id)}.{y_suffix}.npy"
        if not x_path.is_file():
            save_array(x_path, features_file(source, ftype))
        if not y_path.is_file():
            o = ons[ons.track_id == t.track_id]
            n_frames = np.load(x_path, mmap_mode="r").shape[0]
            save_array(y_path, frame_targets(o.time_s.to_numpy(), o.drum.to_numpy(), n_frames, widening=widening))
        per_track[t.track_id] = {"x": str(x_path), "y": str(y_path), "dataset": t.dataset, "split": t.split,
                                 "input": variant}
        groups.setdefault((t.dataset, t.split), []).append((x_path, y_path))
        progress(context.log, "features", i, len(df))
    index_extra = {"feature_type": ftype, "feature_key": fkey, "target_widening": widening}
    shards: dict[str, dict[str, str]] = {}
    per_dataset: dict[str, dict] = {}
    for (dataset, split), items in sorted(groups.items()):
        skey = cache_key("shards", FEATURES_VERSION, [(str(x), str(y)) for x, y in items], SEGMENT_FRAMES)
        cache = StageCache("shards", skey)
        if cache.load() is None:
            index = write_shards(items, cache.dir, extra=index_extra)
            cache.save({"segments": index["segments"]})
        shards.setdefault(dataset, {})[split] = str(cache.dir)
        if split == "train":
            tkey = cache_key("training_stats_dataset", FEATURES_VERSION, [(str(x), str(y)) for x, y in items])
            tcache = StageCache("training_stats", tkey)
            if tcache.load() is None:
                stats = TrainingStats.of_tracks(items, feature_type=ftype)
                stats.save(tcache.dir, train_sets=[dataset])
                tcache.save({"dataset": dataset})
            per_dataset[dataset] = {"key": tkey, "path": str(tcache.dir / "stats.json")}
    value = {"feature_type": ftype, "feature_params": feature_params(ftype), "target_widening": widening,
             "tracks": per_track, "shards": shards, "training_stats": {"datasets": per_dataset}}
    combos = {"+".join(c): training_stats_for(value, c)
              for c in training_combinations(settings.get_profile(), tuple(sorted(per_dataset)))}
    value["training_stats"]["combinations"] = combos
    key = cache_key("features", FEATURES_VERSION, fkey, widening, sorted(per_track.items()), shards,
                    {n: m["key"] for n, m in combos.items()})
    frames = int(sum(np.load(v["x"], mmap_mode="r").shape[0] for v in per_track.values()))
    return dg.Output({"key": key, **value}, data_version=dg.DataVersion(key),
                     metadata={"tracks": len(per_track), "frames": frames, "shards": shards,
                               "feature_type": ftype, "n_bins": feature_params(ftype)["n_bins"],
                               "target_widening": widening,
                               "training_stats": dg.MetadataValue.md(_stats_table(combos)) if combos else "none",
                               "training_stats_dirs": {n: m["dir"] for n, m in combos.items()}})
