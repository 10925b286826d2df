"""Features: log mel spectrograms and frame targets at 100 fps, and shards of 4-s segments."""


import dagster as dg
import numpy as np

from adt.cache import StageCache, cache_key
from adt.config import data_dir
from pipelines.assets.common import progress, read_onsets, read_tracks, safe_name

FEATURES_VERSION = "1"


@dg.asset(group_name="features", code_version=FEATURES_VERSION,
          description="Log mel spectrogram (44.1 kHz, Hann 2048, hop 441 = 10 ms, 80 bands, 20 Hz-20 kHz) of each "
                      "track's drum signal (the separated stem for mixtures, else the drum recording) and 5-class "
                      "frame targets at 100 fps; training shards of 4-s segments per dataset and split.")
def features(context: dg.AssetExecutionContext, tracks: dict, onsets: dict, drum_stems: dict) -> dg.Output[dict]:
    from adt.features import frame_targets, log_mel_file, save_array, write_shards

    df = read_tracks(tracks)
    ons = read_onsets(onsets)
    stems = drum_stems["stems"]
    per_track, groups = {}, {}
    for i, t in enumerate(df.itertuples(), 1):
        source = stems.get(t.track_id) or t.drum_path
        variant = "separated" if t.track_id in stems else "drum"
        folder = data_dir() / "features" / FEATURES_VERSION / tracks["dataset_keys"][t.dataset] / variant
        if variant == "separated":
            folder = folder / drum_stems["model"].get("key", "pretrained")
        x_path, y_path = folder / f"{safe_name(t.track_id)}.x.npy", folder / f"{safe_name(t.track_id)}.y.npy"
        if not (x_path.is_file() and y_path.is_file()):
            x = log_mel_file(source)
            o = ons[ons.track_id == t.track_id]
            save_array(y_path, frame_targets(o.time_s.to_numpy(), o.drum.to_numpy(), x.shape[0]))
            save_array(x_path, x)
        per_track[t.track_id] = {"x": str(x_path), "y": str(y_path), "dataset": t.dataset, "split": t.split,
                                 "input": variant}
        groups.setdefault((t.dataset, t.split), []).append((x_path, y_path))
        progress(context.log, "features", i, len(df))
    shards: dict[str, dict[str, str]] = {}
    for (dataset, split), items in sorted(groups.items()):
        skey = cache_key("shards", FEATURES_VERSION, [str(x) for x, _ in items])
        cache = StageCache("shards", skey)
        if cache.load() is None:
            index = write_shards(items, cache.dir)
            cache.save({"segments": index["segments"]})
        shards.setdefault(dataset, {})[split] = str(cache.dir)
    key = cache_key("features", FEATURES_VERSION, sorted(per_track.items()), shards)
    frames = int(sum(np.load(v["x"], mmap_mode="r").shape[0] for v in per_track.values()))
    return dg.Output({"key": key, "tracks": per_track, "shards": shards}, data_version=dg.DataVersion(key),
                     metadata={"tracks": len(per_track), "frames": frames, "shards": shards})
