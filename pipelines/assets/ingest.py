"""Ingest: raw datasets (download or generate) and the unified tracks/onsets tables."""


import json

import dagster as dg
import pandas as pd

from adt.atomic import atomic_dir, atomic_path, write_json
from adt.cache import StageCache, cache_key
from adt.config import data_dir
from adt.datasets import DATASETS, DatasetTables, get_module
from pipelines.resources import AdtSettings

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))


def raw_pointer(dataset: str):
    return data_dir() / "raw" / dataset / "current.json"


@dg.asset(partitions_def=dataset_partitions, group_name="ingest", code_version="1",
          description="A dataset in its official layout: downloaded (resume, SHA-256) or copied from "
                      "ADT_DATA_MIRROR and extracted safely; the demo corpus is generated.")
def raw_dataset(context: dg.AssetExecutionContext, settings: AdtSettings) -> dg.Output[dict]:
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
        from adt.download import extract, fetch, sha256sum

        downloads = data_dir() / "downloads"
        archives = [fetch(r, downloads, mirror=settings.get_mirror()) for r in module.REMOTES]
        checksums = {a.name: sha256sum(a) for a in archives}
        key = cache_key("raw", name, checksums)
        target = data_dir() / "raw" / name / key
        if not target.is_dir():  # extract() renames a complete folder into place
            if len(archives) == 1:
                extract(archives[0], target)
            else:
                with atomic_dir(target) as tmp:
                    for a in archives:
                        extract(a, tmp / a.stem)
        key = cache_key(key)
    info = {"dataset": name, "path": str(target), "key": key, "checksums": checksums}
    write_json(raw_pointer(name), info)
    return dg.Output(info, data_version=dg.DataVersion(key),
                     metadata={"path": dg.MetadataValue.path(str(target)), "checksums": checksums,
                               "license": getattr(module, "LICENSE", "")})


def _dataset_card(name: str, tables: DatasetTables) -> str:
    t, o = tables.tracks, tables.onsets
    lines = [f"### {name}", "", f"- tracks: {len(t)}, hours: {t.duration_s.sum() / 3600:.2f}",
             f"- sample rates: {sorted(set(int(s) for s in t.sample_rate))}",
             f"- splits: {t.split.value_counts().to_dict()}",
             f"- onsets per class: {o.drum.value_counts().to_dict()}"]
    return "\n".join(lines)


@dg.multi_asset(
    outs={"tracks": dg.AssetOut(group_name="ingest", code_version="1",
                                description="Parquet table of all tracks (schema in adt.datasets)."),
          "onsets": dg.AssetOut(group_name="ingest", code_version="1",
                                description="Parquet table of all annotated onsets, 5-class.")},
    deps=[raw_dataset],
)
def unified_tables(context: dg.AssetExecutionContext, settings: AdtSettings):
    """Build every available dataset's tables (cached per dataset) and concatenate them."""
    profile = settings.get_profile()
    parts, keys, cards = [], {}, []
    for name in DATASETS:
        pointer = raw_pointer(name)
        if not pointer.is_file():
            continue
        raw = json.loads(pointer.read_text())
        module = get_module(name)
        cache = StageCache("datasets", cache_key(name, "1", raw["key"], profile.dataset_digest()))
        manifest = cache.load()
        if manifest is None:
            context.log.info(f"building dataset {name} from {raw['path']}")
            from pathlib import Path

            tables = module.build(Path(raw["path"]), data_dir() / "audio" / name, profile)
            for table in ("tracks", "onsets", "beats"):
                with atomic_path(cache.dir / f"{table}.parquet") as tmp:
                    getattr(tables, table).to_parquet(tmp, index=False)
            manifest = cache.save({"dataset": name, "card": _dataset_card(name, tables)})
        keys[name] = manifest["key"]
        cards.append(manifest["card"])
        parts.append(cache.dir)
    if not parts:
        raise dg.Failure("no raw dataset has been materialized: materialize raw_dataset first")
    key = cache_key("tables", keys)
    out = StageCache("tables", key)
    if out.load() is None:
        for table in ("tracks", "onsets", "beats"):
            df = pd.concat([pd.read_parquet(p / f"{table}.parquet") for p in parts], ignore_index=True)
            with atomic_path(out.dir / f"{table}.parquet") as tmp:
                df.to_parquet(tmp, index=False)
        out.save({"datasets": keys})
    tracks = pd.read_parquet(out.dir / "tracks.parquet")
    onsets = pd.read_parquet(out.dir / "onsets.parquet")
    card = "\n\n".join(cards)
    _log_dataset_cards(card, keys)
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


def _log_dataset_cards(card: str, keys: dict) -> None:
    from adt import tracking

    import mlflow

    cache = StageCache("mlflow-logged", cache_key("datasets", keys))
    if cache.load() is not None:
        return
    with tracking.run("datasets", "dataset-cards", params={f"key.{k}": v for k, v in keys.items()}):
        mlflow.log_text(card, "dataset_cards.md")
    cache.save({})
