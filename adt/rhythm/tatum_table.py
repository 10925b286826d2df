"""The tatums stage (asset ``tatums``): the tatum grid (:func:`adt.rhythm.tatums.tatum_grid`) of every track
and beat source of the ``beats`` table, as one table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd

from adt.atomic import atomic_path
from adt.cache import stage_cache
from adt.config import Settings
from adt.data.tables import TracksResult
from adt.results import PathEntry, Skipped, StageResult
from adt.rhythm.beat_table import BeatsResult
from adt.rhythm.tatums import tatum_grid

#: Version of the tatums stage (``tatums`` asset).
VERSION = "3"  # 3: the grid covers the whole track (extended beats, pickup tatums)
#: Columns of the ``tatums`` table.
TATUM_COLUMNS = ["track_id", "source", "time_s", "beat_index", "subdivision"]


def tatum_table(beats: pd.DataFrame, durations: dict[str, float], subdivisions: int = 4) -> tuple[pd.DataFrame, list[str]]:
    """The tatum grid of every track and beat source.

    Args:
        beats: the ``beats`` table (track_id, source, time_s, position).
        durations: track_id -> duration in seconds (the grid covers the whole track).
        subdivisions: tatums per beat.

    Returns:
        ``(table, skipped)``: columns :data:`TATUM_COLUMNS` (beat_index -1 for pickup
        tatums), and "track (source): reason" for the pairs without a grid.
    """
    parts, skipped = [], []
    for (tid, source), group in beats.groupby(["track_id", "source"], sort=True):
        try:
            grid = tatum_grid(group.time_s.to_numpy(), subdivisions, durations.get(tid))
        except ValueError as exc:
            skipped.append(f"{tid} ({source}): {exc}")
            continue
        parts.append(pd.DataFrame({"track_id": tid, "source": source, "time_s": grid.tatums,
                                   "beat_index": grid.beat_index(), "subdivision": grid.subdivision()}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TATUM_COLUMNS)
    return table, skipped


@dataclasses.dataclass(frozen=True)
class TatumsResult(StageResult):
    """The tatum grid of every track and beat source (asset ``tatums``): ``path`` tatums.parquet
    (:data:`TATUM_COLUMNS`), ``rows`` its rows, ``subdivisions`` tatums per beat, ``skipped`` "track (source):
    reason" for the pairs without a grid."""

    path: str
    rows: int
    subdivisions: int
    skipped: list

    def table(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)

    def metadata(self) -> dict:
        return {"rows": self.rows, "subdivisions": self.subdivisions, "skipped": Skipped(self.skipped),
                "path": PathEntry(self.path)}


def run(settings: Settings, tracks: TracksResult, beats: BeatsResult,
        log: Callable[[str], None] = print) -> TatumsResult:
    """Stage ``tatums``: :func:`build_tatums` with the settings' ``tatum_subdivisions``; says how many
    track/source pairs have no grid."""
    result = build_tatums(beats, tracks, settings.tatum_subdivisions)
    if result.skipped:
        log(f"warning: no tatum grid for {len(result.skipped)} track/source pairs")
    return result


def build_tatums(beats: BeatsResult, tracks: TracksResult, subdivisions: int = 4) -> TatumsResult:
    """:func:`tatum_table` of the ``beats`` stage's table over the ``tracks`` table's durations,
    written to ``<data>/tatums/<key>/tatums.parquet`` (asset ``tatums``).

    Args:
        beats, tracks: the ``beats`` and ``tracks`` stages' results.
    """
    durations = pd.read_parquet(tracks.path).set_index("track_id").duration_s.to_dict()
    table, skipped = tatum_table(pd.read_parquet(beats.path), durations, subdivisions)
    cache = stage_cache("tatums", VERSION, beats.key, tracks.key, subdivisions)
    with atomic_path(cache.dir / "tatums.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    return TatumsResult(key=cache.key, path=str(cache.dir / "tatums.parquet"), skipped=skipped,
                        subdivisions=int(subdivisions), rows=len(table))
