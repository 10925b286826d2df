"""Helpers shared by the asset modules: reading upstream tables, per-track progress."""


import pandas as pd

from adt.vocab import CLASSES_5


def read_tracks(tracks: dict) -> pd.DataFrame:
    return pd.read_parquet(tracks["path"])


def read_onsets(onsets: dict) -> pd.DataFrame:
    return pd.read_parquet(onsets["path"])


def onsets_by_track(onsets: pd.DataFrame) -> dict[str, dict[str, "object"]]:
    """track_id -> class -> sorted onset times (seconds), every class present (maybe empty)."""
    out: dict[str, dict] = {}
    for tid, group in onsets.groupby("track_id"):
        out[tid] = {c: group.loc[group.drum == c, "time_s"].sort_values().to_numpy() for c in CLASSES_5}
    return out


def safe_name(track_id: str) -> str:
    return track_id.replace("/", "__")


def progress(log, what: str, i: int, n: int, every: int = 10) -> None:
    if i == n or i % every == 0:
        log.info(f"{what}: {i}/{n}")
