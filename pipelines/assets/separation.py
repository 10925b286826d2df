"""Open-Unmix drum separation of every mixture."""


from pathlib import Path

import dagster as dg

from adt.cache import StageCache, cache_key
from adt.config import data_dir
from pipelines.assets.common import progress, read_tracks, safe_name
from pipelines.resources import AdtSettings


@dg.asset(group_name="separation", code_version="1", tags={"adt/stage": "training"},
          description="Drum stems separated from every mixture with Open-Unmix: pretrained umxl drums "
                      "when it loads, else a drums model trained here on the demo corpus's rendered stems.")
def drum_stems(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.separation import umx as separation

    profile = settings.get_profile()
    df = read_tracks(tracks)
    mixtures = df[df.mix_path.notna()]
    separator, model_info = separation.load_pretrained(), {"model": "umxl (pretrained)"}
    model_key = "umxl"
    if separator is None:
        train = df[(df.dataset == "demo") & (df.split == "train") & df.mix_path.notna() & df.drum_path.notna()]
        val = df[(df.dataset == "demo") & (df.split == "validation") & df.mix_path.notna()]
        pairs = [(Path(m), Path(d)) for m, d in zip(train.mix_path, train.drum_path)]
        model_key = cache_key("umx-drums", "1", tracks["dataset_keys"].get("demo"), profile.separation_steps,
                              profile.seed)
        cache = StageCache("separation_model", model_key)
        model_path = cache.dir / "drums.pt"
        manifest = cache.load()
        if manifest is None:
            context.log.info(f"training an Open-Unmix drums model on {len(pairs)} rendered mixtures")
            with tracking.run("separation", "umx-drums", params={"steps": profile.separation_steps,
                                                                "train_tracks": len(pairs)}) as run:
                result = separation.train_drums_model(pairs, model_path, steps=profile.separation_steps,
                                                      seed=profile.seed, log=context.log.info)
                for i, loss in enumerate(result["losses"]):
                    mlflow.log_metric("train_loss", loss, step=i)
                sep = separation.load_separator(model_path)
                sdrs = []
                for m, d in zip(val.mix_path, val.drum_path):
                    est = data_dir() / "tmp" / "sdr.wav"
                    separation.separate_file(sep, Path(m), est)
                    from adt.audio import read_audio

                    ref, _ = read_audio(d)
                    hat, _ = read_audio(est)
                    sdrs.append(separation.sdr(ref, hat))
                val_sdr = float(sum(sdrs) / len(sdrs)) if sdrs else float("nan")
                mlflow.log_metric("val_sdr_db", val_sdr)
                manifest = cache.save({"model_path": str(model_path), "val_sdr_db": val_sdr,
                                       "train_seconds": result["seconds"], "run_id": run.info.run_id})
        separator = separation.load_separator(model_path)
        model_info = {"model": "umx-drums trained here", **manifest}
    out_dir = data_dir() / "drum_stems" / model_key
    stems = {}
    for i, (tid, mix) in enumerate(zip(mixtures.track_id, mixtures.mix_path), 1):
        target = out_dir / tracks["dataset_keys"][tid.split("/")[0]] / f"{safe_name(tid)}.wav"
        if not target.is_file():
            separation.separate_file(separator, Path(mix), target)
        stems[tid] = str(target)
        progress(context.log, "separated", i, len(mixtures))
    key = cache_key("stems", model_key, sorted(stems))
    return dg.Output({"key": key, "stems": stems, "model": model_info}, data_version=dg.DataVersion(key),
                     metadata={"mixtures": len(stems), "model": str(model_info.get("model")),
                               "val_sdr_db": float(model_info.get("val_sdr_db", float("nan"))),
                               "path": dg.MetadataValue.path(str(out_dir))})
