"""The ingest stage: a raw dataset fetched or generated, its unified tables, all datasets concatenated.

:func:`fetch_raw` (asset ``raw_dataset``) -> :func:`build_dataset_tables` (asset
``dataset_tables``; both per dataset) -> :func:`unify_tables` (assets ``tracks`` and
``onsets``). Table schemas: :mod:`adt.data.datasets`. Every output is a folder of the
content-keyed cache (:mod:`adt.cache`) written atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dataclasses import dataclass

from adt import tracking
from adt.atomic import atomic_dir, atomic_path, write_json
from adt.cache import cache_key, stage_cache
from adt.config import DataSettings, Settings, data_dir
from adt.data.datasets import DATASETS, get_module
from adt.data.datasets.card import dataset_card
from adt.data.datasets.examples import write_examples
from adt.data.download import fetch_all, is_available
from adt.results import Mapping, MarkdownTables, PathEntry, RunLink, Skipped, StageResult, Table

#: Version of the raw datasets (``raw_dataset``); the demo generator is part of it.
RAW_VERSION = "2"
#: Version of the per-dataset and unified table layout (``dataset_tables``, ``tracks``, ``onsets``).
VERSION = "2"
TABLES = ("tracks", "onsets", "beats")
#: Largest download (bytes) ``make demo`` starts on its own; bigger datasets (E-GMD, Slakh)
#: are used when already downloaded or in the mirror folder, or when named with --datasets.
AUTO_DOWNLOAD_BYTES = 2 * 10**9


@dataclass(frozen=True)
class RawDatasetResult(StageResult):
    """A dataset in its official layout (asset ``raw_dataset``, one per dataset): ``path`` its folder,
    ``checksums`` file -> SHA-256 (the demo corpus: its generator's key)."""

    dataset: str
    path: str
    checksums: dict

    def metadata(self) -> dict:
        module = get_module(self.dataset)
        return {"path": PathEntry(self.path), "checksums": Mapping(self.checksums, key="file", value="sha256"),
                "license": getattr(module, "LICENSE", ""), "access": getattr(module, "ACCESS", "open")}


@dataclass(frozen=True)
class DatasetTablesResult(StageResult):
    """One dataset's unified tables (asset ``dataset_tables``): ``dir`` holds tracks/onsets/beats.parquet
    (schemas: :mod:`adt.data.datasets`); ``card`` its dataset card (Markdown), ``rows`` its tracks, ``hours``
    their duration, ``skipped`` the tracks left out ({track_id, split, reason}), ``run_id`` the card's MLflow run."""

    dataset: str
    dir: str
    card: str
    rows: int
    hours: float
    skipped: list
    profile_digest: str
    has_audio: bool
    examples: list = ()
    external_files: list = ()
    run_id: str | None = None

    def metadata(self) -> dict:
        return {"per_split": MarkdownTables(self.card, names=("per_split", "per_kit")), "tracks": self.rows,
                "hours": round(self.hours, 3), "mlflow_run": RunLink(self.run_id), "skipped": Skipped(self.skipped),
                "path": PathEntry(self.dir)}


@dataclass(frozen=True)
class TracksResult(StageResult):
    """Every dataset with audio concatenated (asset ``tracks``): ``path`` tracks.parquet, ``onsets_path``
    onsets.parquet (5-class), ``gt_beats`` beats.parquet, all in ``dir``; ``dataset_keys`` name -> table key;
    ``cards`` the dataset cards (Markdown)."""

    dir: str
    path: str
    onsets_path: str
    gt_beats: str
    datasets: list
    dataset_keys: dict
    cards: str

    def metadata(self) -> dict:
        tracks = pd.read_parquet(self.path)
        per_dataset = tracks.groupby(["dataset", "split"]).agg(
            tracks=("track_id", "size"), hours=("duration_s", lambda s: round(s.sum() / 3600, 3)))
        return {"rows": len(tracks), "per_dataset": Table(per_dataset.reset_index()), "path": PathEntry(self.path),
                "preview": Table(tracks.head(10)[["track_id", "dataset", "split", "duration_s"]])}


@dataclass(frozen=True)
class OnsetsResult(StageResult):
    """The annotated onsets of every track in ``tracks`` (asset ``onsets``): ``path`` onsets.parquet (5-class;
    schema :data:`adt.data.datasets.ONSETS_SCHEMA`) in the unified tables' folder ``dir``."""

    dir: str
    path: str

    def table(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)

    def references(self) -> dict:
        """track_id -> drum -> sorted onset times (seconds): :func:`adt.metrics.reference_onsets` of the table."""
        from adt.metrics import reference_onsets  # lazy: mir_eval, scipy.signal 0.8 s at import pipelines

        return reference_onsets(self.table())

    def metadata(self) -> dict:
        onsets = self.table()
        return {"rows": len(onsets), "per_class": Mapping(onsets.drum.value_counts().to_dict(), key="drum",
                                                          value="onsets"),
                "path": PathEntry(self.path)}


def run_raw_dataset(settings: Settings, partition: str,
                    on_progress: Callable[[str, int, int | None], None] | None = None) -> RawDatasetResult:
    """Stage ``raw_dataset`` of dataset ``partition``: :func:`fetch_raw` with the profile's data section and the
    settings' mirror."""
    return fetch_raw(partition, settings.get_profile().data, settings.get_mirror(), on_progress=on_progress)


def run_dataset_tables(settings: Settings, raw_dataset: RawDatasetResult,
                       log: Callable[[str], None] = print) -> DatasetTablesResult:
    """Stage ``dataset_tables``: :func:`build_dataset_tables` for the profile's data section."""
    return build_dataset_tables(raw_dataset, settings.get_profile().data, log)


def run_tracks(settings: Settings, dataset_tables: dict[str, DatasetTablesResult],
               log: Callable[[str], None] = print) -> TracksResult:
    """Stage ``tracks``: :func:`unify_tables` of the materialized ``dataset_tables``."""
    return unify_tables(dataset_tables, settings.get_profile().data, log)


def run_onsets(settings: Settings, tracks: TracksResult) -> OnsetsResult:
    """Stage ``onsets``: the onsets table written with ``tracks`` (:func:`unify_tables`)."""
    return OnsetsResult(key=tracks.key, dir=tracks.dir, path=tracks.onsets_path)


def available_datasets(mirror: str | None, names: list[str] | None = None) -> list[str]:
    """Datasets that can be had now: the demo corpus always; any other when each of its
    files is in the download folder or the mirror folder, or, for a file of at most
    AUTO_DOWNLOAD_BYTES that is not request-only, when its mirror or official URL answers.
    ``names``: look at these only (default: every dataset)."""
    downloads = data_dir() / "downloads"
    mirror_dir = Path(mirror) if mirror and not mirror.startswith(("http://", "https://")) else None

    def can_have(remote) -> bool:
        if (downloads / remote.filename).is_file() or (mirror_dir and (mirror_dir / remote.filename).is_file()):
            return True
        return (remote.size or 0) <= AUTO_DOWNLOAD_BYTES and is_available(remote, mirror)

    return [name for name in DATASETS if (names is None or name in names)
            and all(can_have(r) for r in get_module(name).REMOTES)]


def raw_pointer(dataset: str) -> Path:
    """``<data>/raw/<dataset>/current.json``: the latest raw folder, for the archive sensor."""
    return data_dir() / "raw" / dataset / "current.json"


def fetch_raw(name: str, data: DataSettings | None = None, mirror: str | None = None,
              on_progress: Callable[[str, int, int | None], None] | None = None) -> RawDatasetResult:
    """A dataset in its official layout under ``<data>/raw/<name>/<key>``.

    The demo corpus is generated (``data``: the profile's data section, its size and seed); every other dataset is
    downloaded or copied from ``mirror`` and unpacked (:func:`adt.data.download.fetch_all`).

    Returns:
        the dataset's folder and checksums (also written to :func:`raw_pointer`).

    Raises:
        adt.data.download.DownloadError: a 404, a checksum mismatch, no disk space, or a
            dataset given out on request whose files are not in place (the message says
            what to do).
    """
    module = get_module(name)
    if name == "demo":
        if data is None:
            raise ValueError("the demo corpus is generated: fetch_raw('demo', ...) needs the profile's data section")
        key = cache_key("raw_demo", "1", data.demo_tracks, data.demo_duration_s, data.seed)
        target = data_dir() / "raw" / "demo" / key
        if not (target / "metadata.csv").is_file():
            with atomic_dir(target) as tmp:
                module.generate_corpus(tmp, data.demo_tracks, data.demo_duration_s, data.seed)
        checksums = {"generator": key}
    else:
        target, checksums = fetch_all(module.REMOTES, data_dir() / "downloads", data_dir() / "raw" / name,
                                      mirror=mirror, on_progress=on_progress)
        key = target.name
    info = {"dataset": name, "path": str(target), "key": key, "checksums": checksums}
    write_json(raw_pointer(name), info)
    return RawDatasetResult(**info)


def build_dataset_tables(raw: RawDatasetResult, data: DataSettings,
                         log: Callable[[str], None] = print) -> DatasetTablesResult:
    """One dataset's unified tables for a profile's ``data`` section, built once per (raw data, section) and
    cached.

    Writes ``tracks.parquet``, ``onsets.parquet`` and ``beats.parquet`` (and the audio the
    dataset module renders, mixes or crops under ``<data>/audio/<dataset>``); logs the
    dataset card to MLflow (experiment ``adt/datasets``) once.

    Args:
        raw: the output of :func:`fetch_raw`.

    Returns:
        the tables' folder, card and counts, with the MLflow run of its card.
    """
    name = raw.dataset
    module = get_module(name)
    cache = stage_cache("datasets", VERSION, name, getattr(module, "VERSION", "1"), raw.key,
                        data.digest())

    def build(folder: Path) -> dict:
        log(f"building dataset {name} from {raw.path}")
        skipped: list[dict] = []
        renders = data_dir() / "audio" / name
        tables = module.build(Path(raw.path), renders, data, skipped=skipped)
        for table in TABLES:
            with atomic_path(folder / f"{table}.parquet") as tmp:
                getattr(tables, table).to_parquet(tmp, index=False)
        examples = write_examples(tables, folder / "examples")
        return {"dataset": name, "dir": str(folder), "card": dataset_card(module, tables),
                "examples": [str(p) for p in examples],
                "rows": len(tables.tracks), "skipped": skipped, "profile_digest": data.digest(),
                "hours": float(tables.tracks.duration_s.sum() / 3600),
                "has_audio": bool(tables.tracks[["mix_path", "drum_path"]].notna().any(axis=None)),
                # the audio rendered for this table: checked with the folder's files (adt.cache)
                "external_files": [p for p in tables.tracks[["mix_path", "drum_path"]].stack()
                                   if isinstance(p, str) and Path(p).resolve().is_relative_to(renders.resolve())]}

    started = time.time()
    manifest = cache.get_or_compute(build)
    return DatasetTablesResult.from_manifest({**manifest, "run_id": _log_card(manifest, started)})


def _log_card(manifest: dict, started: float) -> str:
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    def log() -> None:
        mlflow.log_text(manifest["card"], f"dataset_card_{manifest['dataset']}.md")
        for path in manifest.get("examples", []):
            if Path(path).is_file():
                mlflow.log_artifact(path, "examples")
        mlflow.log_metrics({"tracks": manifest["rows"], "hours": manifest["hours"]})

    return tracking.log_once("datasets", f"dataset-card-{manifest['dataset']}", manifest["key"], log,
                      params={"dataset": manifest["dataset"], "key": manifest["key"]}, started=started)


def unify_tables(datasets: dict[str, DatasetTablesResult], data: DataSettings,
                 log: Callable[[str], None] = print) -> TracksResult:
    """Concatenate the tables of every dataset with audio (ADTOF-YT ships spectrograms and
    stays in its own partition).

    Args:
        datasets: dataset name -> its :func:`build_dataset_tables` result (the materialized
            ``dataset_tables`` partitions); those built for another data section (:meth:`DataSettings.digest`)
            are left out with a message.

    Raises:
        ValueError: no dataset with audio built for this profile.
    """
    parts: dict[str, DatasetTablesResult] = {}
    for name, manifest in sorted(datasets.items(), key=lambda item: list(DATASETS).index(item[0])):
        if manifest.profile_digest != data.digest():
            log(f"{name}: its tables were built for another profile; materialize dataset_tables[{name}] again "
                "to include it")
        elif not manifest.has_audio:
            log(f"{name}: no audio (features only); not in the unified tables")
        else:
            parts[name] = manifest
    if not parts:
        raise ValueError(f"no dataset with audio has tables for profile {data.profile!r}: materialize "
                         "raw_dataset and dataset_tables first")
    keys = {name: m.key for name, m in parts.items()}
    cache = stage_cache("tables", VERSION, keys)

    def concat(folder: Path) -> dict:
        for table in TABLES:
            frames = [pd.read_parquet(Path(m.dir) / f"{table}.parquet") for m in parts.values()]
            df = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
            with atomic_path(folder / f"{table}.parquet") as tmp:
                df.to_parquet(tmp, index=False)
        return {"datasets": keys}

    cache.get_or_compute(concat)
    return TracksResult(key=cache.key, dir=str(cache.dir), path=str(cache.dir / "tracks.parquet"),
                        onsets_path=str(cache.dir / "onsets.parquet"), gt_beats=str(cache.dir / "beats.parquet"),
                        datasets=sorted(keys), dataset_keys=keys, cards="\n\n".join(m.card for m in parts.values()))
