"""Ingest (library: adt.data.tables, adt.data.kits): the kit catalogue, raw datasets, per-dataset
tables, the unified tables.

kit_catalogue (the recorded kits the profile renders with) -> dataset_tables[d]; raw_dataset[d] -> dataset_tables[d] (both partitioned by dataset: adding a dataset
computes only its partitions) -> tracks, onsets (every materialized partition, through
an all-partitions mapping that skips datasets not materialized).
"""

import dagster as dg

from adt.data import tables
from adt.data.datasets import DATASETS, get_module
from adt.data.kits import catalogue
from pipelines.metadata import mapping_table, markdown_tables, mlflow_run, skipped_table, table_entries
from pipelines.resources import AdtSettings

dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))


def _progress_logger(log):
    def report(name: str, done: int, total: int | None) -> None:
        share = f" of {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)" if total else " MiB"
        log.info(f"{name}: {done / 2**20:.1f}{share}")
    return report


@dg.asset(partitions_def=dataset_partitions, group_name="ingest", code_version=tables.RAW_VERSION,
          description="A dataset in its official layout: downloaded (resumable, checksum verified, free disk "
                      "checked) or copied from ADT_DATA_MIRROR and extracted safely; request-only datasets "
                      "(ENST, ADTOF) are placed by hand; the demo corpus is generated.")
def raw_dataset(context: dg.AssetExecutionContext, settings: AdtSettings) -> dg.Output[dict]:
    from adt.data.download import DownloadError

    module = get_module(context.partition_key)
    try:
        info = tables.fetch_raw(context.partition_key, settings.get_profile(), settings.get_mirror(),
                                on_progress=_progress_logger(context.log))
    except DownloadError as exc:  # 404, checksum, disk space, a dataset to request: say what to do
        raise dg.Failure(description=str(exc), allow_retries=False,
                         metadata={"homepage": getattr(module, "HOMEPAGE", ""),
                                   "access": getattr(module, "ACCESS", "open"),
                                   "files": [r.filename for r in module.REMOTES]}) from exc
    return dg.Output(info, data_version=dg.DataVersion(info["key"]),
                     metadata={"path": dg.MetadataValue.path(info["path"]),
                               **mapping_table("checksums", info["checksums"], key="file", value="sha256"),
                               "license": getattr(module, "LICENSE", ""),
                               "access": getattr(module, "ACCESS", "open")})


@dg.asset(group_name="ingest", code_version=catalogue.VERSION,
          description="The drum kits the profile renders with (Profile.corpus_kits): per kit piece its class, "
                      "velocity layers, sample rate, source Debian package and license (reviewed maps, "
                      "adt.data.kits); the packages fetched (SHA-256 pinned) or taken from ADT_DATA_MIRROR and "
                      "unpacked side by side in worker processes (ADT_JOBS).")
def kit_catalogue(context: dg.AssetExecutionContext, settings: AdtSettings) -> dg.Output[dict]:
    kits = [k for split in (settings.get_profile().corpus_kits or {}).values() for k in split]
    info = catalogue.build_kit_catalogue(kits, settings.get_mirror())
    return dg.Output(info, data_version=dg.DataVersion(info["key"]),
                     metadata={**markdown_tables("kits", info["summary"]), "kit_count": info["kits"],
                               "acoustic_kits": info["acoustic"], "packages": ", ".join(info["packages"]),
                               "path": dg.MetadataValue.path(info["path"])})


@dg.asset(partitions_def=dataset_partitions, group_name="ingest", code_version=tables.VERSION, deps=[kit_catalogue],
          description="One dataset unified: Parquet tables tracks, onsets (5-class), beats (schema in "
                      "adt.data.datasets), its audio cropped/mixed/rendered as the profile says (renders: one "
                      "track per job in worker processes, ADT_JOBS), and a dataset card.")
def dataset_tables(context: dg.AssetExecutionContext, settings: AdtSettings, raw_dataset: dict) -> dg.Output[dict]:
    manifest = tables.build_dataset_tables(raw_dataset, settings.get_profile(), context.log.info)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={**markdown_tables("per_split", manifest["card"], names=("per_split", "per_kit")),
                               "tracks": manifest["rows"], "hours": round(manifest["hours"], 3),
                               **mlflow_run(manifest.get("run_id")), **skipped_table(manifest["skipped"]),
                               "path": dg.MetadataValue.path(manifest["dir"])})


@dg.multi_asset(
    outs={"tracks": dg.AssetOut(group_name="ingest", code_version=tables.VERSION,
                                description="Parquet table of all tracks with audio (schema in adt.data.datasets)."),
          "onsets": dg.AssetOut(group_name="ingest", code_version=tables.VERSION,
                                description="Parquet table of all annotated onsets, 5-class.")},
    ins={"dataset_tables": dg.AssetIn(partition_mapping=dg.AllPartitionMapping(),
                                      metadata={"allow_missing_partitions": True})},
)
def unified_tables(context: dg.AssetExecutionContext, settings: AdtSettings, dataset_tables: dict[str, dict]):
    """Concatenate the tables of every materialized dataset with audio."""
    import pandas as pd

    try:
        value = tables.unify_tables(dataset_tables, settings.get_profile(), context.log.info)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    tracks, onsets = pd.read_parquet(value["path"]), pd.read_parquet(value["onsets_path"])
    per_dataset = tracks.groupby(["dataset", "split"]).agg(tracks=("track_id", "size"),
                                                           hours=("duration_s", lambda s: round(s.sum() / 3600, 3)))
    yield dg.Output(value, output_name="tracks", data_version=dg.DataVersion(value["key"]),
                    metadata={"rows": len(tracks), **table_entries("per_dataset", per_dataset.reset_index()),
                              "path": dg.MetadataValue.path(value["path"]),
                              **table_entries("preview", tracks.head(10)[["track_id", "dataset", "split",
                                                                           "duration_s"]])})
    yield dg.Output({**value, "path": value["onsets_path"]}, output_name="onsets",
                    data_version=dg.DataVersion(value["key"]),
                    metadata={"rows": len(onsets), **mapping_table("per_class", onsets.drum.value_counts().to_dict(),
                                                                              key="drum", value="onsets"),
                              "path": dg.MetadataValue.path(value["onsets_path"])})
