"""Ingest: raw datasets (download, place or generate), per-dataset tables, the unified tables.

raw_dataset[d] -> dataset_tables[d] (both partitioned by dataset: adding a dataset
computes only its partitions) -> tracks, onsets (every dataset with audio, concatenated).
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from adt.atomic import atomic_dir, atomic_path, write_json
from adt.cache import StageCache, cache_key
from adt.config import data_dir
from adt.data.datasets import DATASETS, get_module
from adt.data.datasets.card import dataset_card
from pipelines.resources import AdtSettings

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))

#: Bump when the per-dataset table layout changes.
TABLES_VERSION = "2"


def raw_pointer(dataset: str) -> Path:
    return data_dir() / "raw" / dataset / "current.json"


def _progress_logger(log):
    def report(name: str, done: int, total: int | None) -> None:
        if total:
            log.info(f"{name}: {done / 2**20:.1f} of {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)")
        else:
            log.info(f"{name}: {done / 2**20:.1f} MiB")
    return report


@dg.asset(partitions_def=dataset_partitions, group_name="ingest", code_version="2",
          description="A dataset in its official layout: downloaded (resumable, checksum verified, free disk "
                      "checked) or copied from ADT_DATA_MIRROR and extracted safely; request-only datasets "
                      "(ENST, ADTOF) are placed by hand; the demo corpus is generated.")
def raw_dataset(context: dg.AssetExecutionContext, settings: AdtSettings) -> dg.Output[dict]:
    from adt.data.download import DownloadError, fetch_all

    name = context.partition_key
    profile = settings.get_profile()
    module = get_module(name)
    if name == "demo":
        key = cache_key("raw_demo", "1", profile.demo_tracks, profile.demo_duration_s, profile.seed)
        target = data_dir() / "raw" / "demo" / key
        if not (target / "metadata.csv").is_file():
            with atomic_dir(target) as tmp:
                module.generate_corpus(tmp, profile.demo_tracks, profile.demo_duration_s, profile.seed)
        checksums = {"generator": key}
    else:
        try:
            target, checksums = fetch_all(module.REMOTES, data_dir() / "downloads", data_dir() / "raw" / name,
                                          mirror=settings.get_mirror(), on_progress=_progress_logger(context.log))
        except DownloadError as exc:  # 404, checksum, disk space, a dataset to request: say what to do
            raise dg.Failure(description=str(exc), allow_retries=False,
                             metadata={"homepage": getattr(module, "HOMEPAGE", ""),
                                       "access": getattr(module, "ACCESS", "open"),
                                       "files": [r.filename for r in module.REMOTES]}) from exc
        key = target.name
    info = {"dataset": name, "path": str(target), "key": key, "checksums": checksums}
    write_json(raw_pointer(name), info)
    return dg.Output(info, data_version=dg.DataVersion(key),
                     metadata={"path": dg.MetadataValue.path(str(target)), "checksums": checksums,
                               "license": getattr(module, "LICENSE", ""),
                               "access": getattr(module, "ACCESS", "open")})


def build_tables(name: str, profile, log) -> tuple[StageCache, dict]:
    """The dataset's unified tables for ``profile``, built once per (raw data, profile) and cached.

    Returns:
        (the cache holding tracks/onsets/beats Parquet files, its manifest).

    Raises:
        dg.Failure: the raw dataset has not been materialized.
    """
    pointer = raw_pointer(name)
    if not pointer.is_file():
        raise dg.Failure(f"raw_dataset[{name}] has not been materialized")
    raw = json.loads(pointer.read_text())
    module = get_module(name)
    cache = StageCache("datasets", cache_key(name, TABLES_VERSION, getattr(module, "VERSION", "1"), raw["key"],
                                             profile.dataset_digest()))
    manifest = cache.load()
    if manifest is None:
        log.info(f"building dataset {name} from {raw['path']}")
        skipped: list[dict] = []
        tables = module.build(Path(raw["path"]), data_dir() / "audio" / name, profile, skipped=skipped)
        for table in ("tracks", "onsets", "beats"):
            with atomic_path(cache.dir / f"{table}.parquet") as tmp:
                getattr(tables, table).to_parquet(tmp, index=False)
        card = dataset_card(module, tables)
        manifest = cache.save({"dataset": name, "card": card, "rows": len(tables.tracks), "skipped": skipped,
                               "hours": float(tables.tracks.duration_s.sum() / 3600),
                               "has_audio": bool(tables.tracks[["mix_path", "drum_path"]].notna().any(axis=None))})
    return cache, manifest


@dg.asset(partitions_def=dataset_partitions, group_name="ingest", code_version=TABLES_VERSION, deps=[raw_dataset],
          description="One dataset unified: Parquet tables tracks, onsets (5-class), beats (schema in "
                      "adt.data.datasets), its audio cropped/mixed/rendered as the profile says, and a dataset card.")
def dataset_tables(context: dg.AssetExecutionContext, settings: AdtSettings) -> dg.Output[dict]:
    name = context.partition_key
    cache, manifest = build_tables(name, settings.get_profile(), context.log)
    _log_dataset_card(name, manifest)
    value = {"dataset": name, "key": manifest["key"], "dir": str(cache.dir)}
    return dg.Output(value, data_version=dg.DataVersion(manifest["key"]),
                     metadata={"dataset_card": dg.MetadataValue.md(manifest["card"]), "tracks": manifest["rows"],
                               "hours": round(manifest["hours"], 3),
                               "skipped": [f"{s['track_id']}: {s['reason']}" for s in manifest.get("skipped", [])][:50],
                               "path": dg.MetadataValue.path(str(cache.dir))})


@dg.multi_asset(
    outs={"tracks": dg.AssetOut(group_name="ingest", code_version=TABLES_VERSION,
                                description="Parquet table of all tracks with audio (schema in adt.data.datasets)."),
          "onsets": dg.AssetOut(group_name="ingest", code_version=TABLES_VERSION,
                                description="Parquet table of all annotated onsets, 5-class.")},
    deps=[dataset_tables],
)
def unified_tables(context: dg.AssetExecutionContext, settings: AdtSettings):
    """Concatenate the tables of every dataset whose raw data is in place (building any not yet
    built for this profile). Datasets without audio (ADTOF-YT ships spectrograms) stay in
    their dataset_tables partition only."""
    profile = settings.get_profile()
    parts, keys, cards = [], {}, []
    for name in DATASETS:
        if not raw_pointer(name).is_file():
            continue
        cache, manifest = build_tables(name, profile, context.log)
        if not manifest.get("has_audio", True):
            context.log.info(f"{name}: no audio (features only); not in the unified tables")
            continue
        keys[name] = manifest["key"]
        cards.append(manifest["card"])
        parts.append(cache.dir)
    if not parts:
        raise dg.Failure("no raw dataset has been materialized: materialize raw_dataset first")
    key = cache_key("tables", keys)
    out = StageCache("tables", key)
    if out.load() is None:
        for table in ("tracks", "onsets", "beats"):
            frames = [pd.read_parquet(p / f"{table}.parquet") for p in parts]
            df = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
            with atomic_path(out.dir / f"{table}.parquet") as tmp:
                df.to_parquet(tmp, index=False)
        out.save({"datasets": keys})
    tracks = pd.read_parquet(out.dir / "tracks.parquet")
    onsets = pd.read_parquet(out.dir / "onsets.parquet")
    card = "\n\n".join(cards)
    value = {"key": key, "dir": str(out.dir), "datasets": sorted(keys), "dataset_keys": keys}
    yield dg.Output({**value, "path": str(out.dir / "tracks.parquet"), "gt_beats": str(out.dir / "beats.parquet")},
                    output_name="tracks", data_version=dg.DataVersion(key),
                    metadata={"rows": len(tracks), "dataset_cards": dg.MetadataValue.md(card),
                              "path": dg.MetadataValue.path(str(out.dir / "tracks.parquet")),
                              "preview": dg.MetadataValue.md(tracks.head(10).to_markdown(index=False))})
    yield dg.Output({**value, "path": str(out.dir / "onsets.parquet")}, output_name="onsets",
                    data_version=dg.DataVersion(key),
                    metadata={"rows": len(onsets), "per_class": onsets.drum.value_counts().to_dict(),
                              "path": dg.MetadataValue.path(str(out.dir / "onsets.parquet"))})


def _log_dataset_card(name: str, manifest: dict) -> None:
    """Log the card to MLflow (experiment adt/datasets) once per built table set."""
    from adt import tracking

    import mlflow

    logged = StageCache("mlflow-logged", cache_key("dataset-card", manifest["key"]))
    if logged.load() is not None:
        return
    with tracking.run("datasets", f"dataset-card-{name}", params={"dataset": name, "key": manifest["key"]}):
        mlflow.log_text(manifest["card"], f"dataset_card_{name}.md")
        mlflow.log_metrics({"tracks": manifest["rows"], "hours": manifest["hours"]})
    logged.save({})
