"""The quantization stage (asset ``quantization_stats``): the tatum paper's Table I, the share of onsets lost
to conflict and far (:mod:`adt.rhythm.quantization`) per dataset and beat source."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from adt import tracking
from adt.atomic import atomic_path
from adt.cache import stage_cache
from adt.config import Settings
from adt.data.tables import OnsetsResult, TracksResult
from adt.results import RunLink, Skipped, StageResult, Table
from adt.rhythm.quantization import quantize_onsets, summarize
from adt.rhythm.tatum_table import TatumsResult
from adt.vocab import CLASSES_3

#: Version of the quantization stage (``quantization_stats`` asset).
VERSION = "2"  # 2: on the whole-track grid; Table I on the paper's 3 classes, 5-class beside it


@dataclass(frozen=True)
class QuantizationStatsResult(StageResult):
    """The tatum paper's Table I (asset ``quantization_stats``): ``table`` the 3-class ratios per dataset and beat
    source (records; also ``path``, table1.parquet), ``table_5class`` the 5-class ones, ``per_drum`` the
    per-drum table (Parquet path), ``skipped`` tracks with onsets but no grid, ``run_id`` the tables' MLflow run."""

    dir: str
    path: str
    table: list
    table_5class: list
    per_drum: str
    skipped: list
    run_id: str | None = None

    def metadata(self) -> dict:
        per_drum = pd.read_parquet(self.per_drum)
        return {"table1": Table(pd.DataFrame(self.table).round(4)),
                "table1_5class": Table(pd.DataFrame(self.table_5class).round(4)),
                "per_drum_ground_truth": Table(per_drum[per_drum.source == "ground_truth"].round(4)),
                "mlflow_run": RunLink(self.run_id), "skipped": Skipped(self.skipped)}


def run(settings: Settings, tracks: TracksResult, onsets: OnsetsResult, tatums: TatumsResult
        ) -> QuantizationStatsResult:
    """Stage ``quantization_stats``: :func:`table_one` (far: 50 ms, as in the paper)."""
    return table_one(tracks, onsets, tatums)


def table_one(tracks: TracksResult, onsets: OnsetsResult, tatums: TatumsResult,
              far_s: float = 0.05) -> QuantizationStatsResult:
    """The tatum paper's Table I for every dataset and beat source, written and logged once.

    Every annotated onset is quantized to the nearest tatum of its track's grid
    (:func:`quantize_onsets`); the ratios are micro-averaged per dataset and beat source
    (:func:`summarize`). ``table1`` counts the paper's 3 classes (BD, SD, HH), ``table1_5class``
    all 5; ``per_drum`` splits the 5-class table by drum.

    Args:
        tracks, onsets, tatums: the ``tracks``, ``onsets`` and ``tatums`` stages' results.
    """
    started = time.time()  # the MLflow run of the tables spans their computation
    cache = stage_cache("quantization_stats", VERSION, tatums.key, onsets.key, far_s)
    subdivisions = tatums.subdivisions
    tracks, onsets, tatums = (pd.read_parquet(v.path) for v in (tracks, onsets, tatums))
    dataset_of = tracks.set_index("track_id").dataset
    flags = []
    for (tid, source), grid in tatums.groupby(["track_id", "source"]):
        o = onsets[onsets.track_id == tid]
        if o.empty:
            continue
        f = quantize_onsets(o.time_s.to_numpy(), o.drum.to_numpy(), grid.time_s.to_numpy(), far_s=far_s)
        flags.append(f.assign(track_id=tid, source=source, dataset=dataset_of[tid], drum=o.drum.to_numpy()))
    flags = pd.concat(flags, ignore_index=True)
    tables = {"table1": summarize(flags[flags.drum.isin(CLASSES_3)], ["dataset", "source"]),
              "table1_5class": summarize(flags, ["dataset", "source"]),
              "per_drum": summarize(flags, ["dataset", "source", "drum"])}
    for name, df in tables.items():
        with atomic_path(cache.dir / f"{name}.parquet") as tmp:
            df.to_parquet(tmp, index=False)

    def log() -> None:
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

        for name, df in tables.items():
            mlflow.log_table(df, f"{name}.json")

    run_id = tracking.log_once("quantization", "table1", cache.key, log,
                               params={"far_s": far_s, "subdivisions": subdivisions, "classes": "BD,SD,HH (table1)"},
                               started=started)
    return QuantizationStatsResult(
        key=cache.key, run_id=run_id, dir=str(cache.dir), path=str(cache.dir / "table1.parquet"),
        table=tables["table1"].to_dict("records"), table_5class=tables["table1_5class"].to_dict("records"),
        per_drum=str(cache.dir / "per_drum.parquet"), skipped=sorted(set(onsets.track_id) - set(tatums.track_id)))
