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


def read_yaml_stems(path: str | os.PathLike, what: str = "metadata.yaml", nonempty: bool = False) -> dict:
    """A multitrack metadata file (Slakh's ``metadata.yaml``, MedleyDB's ``METADATA.yaml``): the YAML document,
    checked to be a mapping with a ``stems`` mapping (non-empty with ``nonempty``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid YAML, or no ``stems`` mapping (names the file and ``what`` it is).
    """
    import yaml  # lazy: yaml 11 ms at adt evaluate

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed {what} ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("stems"), dict) or (nonempty and not doc["stems"]):
        raise ValueError(f"{path}: malformed {what}: expected a mapping with a {'non-empty ' if nonempty else ''}"
                         f"'stems' mapping")
    return doc
