"""Readers for the text annotation files of recorded datasets (MDB Drums, ENST-Drums)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd


def read_time_value_lines(path: str | os.PathLike, column: str, convert=str, what: str = "label") -> pd.DataFrame:
    """Lines ``<time s> <value>`` (whitespace-separated; blank lines skipped) as columns
    ``time_s`` (seconds) and ``column`` (``convert(value)``), sorted by time (stable).

    Raises:
        ValueError: a line without exactly two fields, a time that is not a finite,
            non-negative number, or a value ``convert`` rejects (names the file and line).
    """
    rows = []
    for no, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise ValueError
            t = float(fields[0])
            if not math.isfinite(t) or t < 0:
                raise ValueError
            rows.append((t, convert(fields[1])))
        except ValueError:
            raise ValueError(f"{path}:{no}: expected '<time s> <{what}>', got {line!r}") from None
    df = pd.DataFrame(rows, columns=["time_s", column])
    return df.sort_values("time_s", kind="stable").reset_index(drop=True)
