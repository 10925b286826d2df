"""What a stage returns: a frozen dataclass of typed fields, stored as JSON, described for a UI.

Every stage's ``run`` (:mod:`adt.stages`) returns a subclass of :class:`StageResult`: its fields are
what the downstream stages read (paths of Parquet tables and folders, small tables as lists of rows,
figures, the MLflow run id), never a dict whose keys a reader has to know. The stage's content-keyed
cache (:mod:`adt.cache`) keeps the same fields in its ``manifest.json``; :meth:`StageResult.from_manifest`
reads them back (keys that are not fields, such as the cache's ``files`` record, stay on disk).

:meth:`StageResult.metadata` describes a result for a UI with the entry types of this module
(:class:`Table`, :class:`MarkdownTables`, :class:`Mapping`, :class:`RunLink`, :class:`ModelLink`,
:class:`Figure`, :class:`FigureLink`, :class:`PathEntry`, :class:`Skipped`) and plain numbers and
strings; ``pipelines.metadata.dagster_metadata`` turns them into Dagster metadata. No Dagster here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd


@dataclasses.dataclass(frozen=True)
class StageResult:
    """Base of the stage results.

    Attributes:
        key: content key of the result (the stage cache's key); the Dagster data version.
    """

    key: str

    @classmethod
    def from_manifest(cls, manifest: dict) -> "StageResult":
        """The result whose fields a stage's manifest (or :meth:`to_json`) holds; other keys are left out.

        Raises:
            ValueError: a field without a default is missing from ``manifest``.
        """
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in manifest and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{cls.__name__}: the manifest lacks {missing} (keys: {sorted(manifest)})")
        return cls(**{f.name: manifest[f.name] for f in fields if f.name in manifest})

    from_json = from_manifest

    def to_json(self) -> dict:
        """The fields as JSON data (their values are JSON data already: str, numbers, lists, dicts)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def metadata(self) -> dict[str, Any]:
        """What a UI shows of this result: name -> an entry of this module or a plain value."""
        return {}


@dataclasses.dataclass(frozen=True)
class Table:
    """A table (rows as records or a DataFrame); shown as a table, split when wide; ``index``: its first column."""

    rows: pd.DataFrame | list[dict]
    index: str | None = None

    def frame(self) -> pd.DataFrame:
        return self.rows if isinstance(self.rows, pd.DataFrame) else pd.DataFrame(self.rows)


@dataclasses.dataclass(frozen=True)
class MarkdownTables:
    """Markdown text with pipe tables (what the library writes for MLflow), shown as tables and a note;
    ``names``: one name per table (default: the entry's name, numbered)."""

    text: str
    names: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A mapping shown as a two-column table (``key`` | ``value``), or one table per key when its values are
    mappings."""

    values: dict
    key: str = "key"
    value: str = "value"


@dataclasses.dataclass(frozen=True)
class RunLink:
    """The MLflow run a result was logged in (None: no run)."""

    run_id: str | None


@dataclasses.dataclass(frozen=True)
class ModelLink:
    """A registered model version (``models:/name/version`` or ``models:/name@alias``; None: none)."""

    uri: str | None


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure file logged in an MLflow run: shown as a preview with a link to the full size."""

    path: str
    run_id: str | None
    caption: str


@dataclasses.dataclass(frozen=True)
class FigureLink:
    """A link to an artifact (``file``) of an MLflow run."""

    file: str
    run_id: str | None


@dataclasses.dataclass(frozen=True)
class PathEntry:
    """A file or folder on disk."""

    path: str


@dataclasses.dataclass(frozen=True)
class Skipped:
    """What a stage left out, with why (strings)."""

    items: list
