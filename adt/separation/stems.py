"""The separation stage: a drum stem for every mixture (tatum paper Sec. IV-A: Open-Unmix drums).

:func:`separate_mixtures` (asset ``drum_stems``) uses the pretrained Open-Unmix
``umxl`` when it loads, else trains a drums model on the demo corpus's rendered
mixtures and drum stems (cached, logged to MLflow ``adt/separation`` with its
validation SDR), then separates every mixture once (cached per track).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from adt.cache import cache_key, stage_cache, track_file
from adt.config import Profile, data_dir
from adt.separation import umx
from adt.tracking import progress

#: Version of the drums model trained here and of the stems.
VERSION = "1"


def demo_separator(tracks: pd.DataFrame, demo_key: str | None, profile: Profile,
                   log: Callable[[str], None] = print) -> tuple[object, dict]:
    """An Open-Unmix drums model trained (once) on the demo corpus's training mixtures.

    Returns:
        ``(separator, manifest)``; the manifest holds ``key``, ``model_path``,
        ``val_sdr_db`` (mean SDR in dB on the demo validation mixtures), ``train_seconds``, ``run_id``.
    """
    import mlflow

    from adt import tracking
    from adt.audio import read_audio

    demo = tracks[(tracks.dataset == "demo") & tracks.mix_path.notna()]
    train = demo[(demo.split == "train") & demo.drum_path.notna()]
    val = demo[demo.split == "validation"]
    pairs = [(Path(m), Path(d)) for m, d in zip(train.mix_path, train.drum_path)]
    cache = stage_cache("separation_model", VERSION, "umx-drums", demo_key, profile.separation_steps, profile.seed)

    def train_model(folder: Path) -> dict:
        model_path = folder / "drums.pt"
        log(f"training an Open-Unmix drums model on {len(pairs)} rendered mixtures")
        with tracking.run("separation", "umx-drums", params={"steps": profile.separation_steps,
                                                            "train_tracks": len(pairs)}) as run:
            result = umx.train_drums_model(pairs, model_path, steps=profile.separation_steps, seed=profile.seed,
                                           log=log)
            for i, loss in enumerate(result["losses"]):
                mlflow.log_metric("train_loss", loss, step=i)
            separator = umx.load_separator(model_path)
            sdrs = []
            for mix, drums in zip(val.mix_path, val.drum_path):
                estimate = data_dir() / "tmp" / "sdr.wav"
                umx.separate_file(separator, Path(mix), estimate)
                sdrs.append(umx.sdr(read_audio(drums)[0], read_audio(estimate)[0]))
            val_sdr = float(sum(sdrs) / len(sdrs)) if sdrs else float("nan")
            mlflow.log_metric("val_sdr_db", val_sdr)
        return {"model_path": str(model_path), "val_sdr_db": val_sdr, "train_seconds": result["seconds"],
                "run_id": run.info.run_id}

    manifest = cache.get_or_compute(train_model)
    return umx.load_separator(Path(manifest["model_path"])), manifest


def separate_mixtures(tracks: dict, profile: Profile, log: Callable[[str], None] = print) -> dict:
    """Separate the drums of every track with a mixture (``mix_path``).

    Args:
        tracks: the ``tracks`` stage value (``path`` of the table, schema in :mod:`adt.data.datasets`;
            ``dataset_keys``: dataset -> table key, under which stems are cached per track).

    Returns:
        ``{"key", "stems": {track_id: wav path}, "model": {"model", "key", ...}, "dir"}``.
    """
    dataset_keys = tracks["dataset_keys"]
    tracks = pd.read_parquet(tracks["path"])
    separator, model_info = umx.load_pretrained(), {"model": "umxl (pretrained)", "key": "umxl"}
    if separator is None:
        separator, manifest = demo_separator(tracks, dataset_keys.get("demo"), profile, log)
        model_info = {"model": "umx-drums trained here", **manifest}
    out_dir = data_dir() / "drum_stems" / model_info["key"]
    mixtures = tracks[tracks.mix_path.notna()]
    stems = {}
    for i, (tid, mix) in enumerate(zip(mixtures.track_id, mixtures.mix_path), 1):
        target = track_file(out_dir / dataset_keys[tid.split("/")[0]], tid, ".wav")
        if not target.is_file():
            umx.separate_file(separator, Path(mix), target)
        stems[tid] = str(target)
        progress(log, "separated", i, len(mixtures))
    key = cache_key("stems", VERSION, model_info["key"], sorted(stems))
    return {"key": key, "stems": stems, "model": model_info, "dir": str(out_dir)}
