"""Dagster metadata a person reads: MLflow runs as links, figures as images, floats rounded."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def mlflow_run(run_id: str | None) -> dict:
    """``mlflow_run_id`` (text) and ``mlflow_run`` (a link to the run in ``make ui``'s MLflow,
    :func:`adt.tracking.run_url`) for an asset's metadata; empty without a run."""
    if not run_id:
        return {}
    from adt.tracking import run_url

    url = run_url(run_id)
    return {"mlflow_run_id": str(run_id), **({"mlflow_run": dg.MetadataValue.url(url)} if url else {})}


def figure(name: str, path: str | Path | None, run_id: str | None, title: str) -> dict:
    """A figure logged as an artifact of MLflow run ``run_id``: ``name`` shows it as an image (Markdown,
    served by ``make ui``'s MLflow, :func:`adt.tracking.artifact_url`), ``<name>_url`` opens it; without a
    run, its file path. Empty without a figure."""
    if not path:
        return {}
    from adt.tracking import artifact_url

    url = artifact_url(run_id, Path(path).name) if run_id else None
    if not url:
        return {f"{name}_path": dg.MetadataValue.path(str(path))}
    return {name: dg.MetadataValue.md(f"**{title}**\n\n![{title}]({url})"),
            f"{name}_url": dg.MetadataValue.url(url), f"{name}_path": dg.MetadataValue.path(str(path))}


def rounded(value, digits: int = 4):
    """``value`` with every float rounded to ``digits`` (in dicts and lists too), for metadata."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def table(frame, index: str | None = None) -> dg.TableMetadataValue:
    """A DataFrame as a Dagster table (rendered inline in the UI, not behind "Show Markdown"); the index
    becomes the first column, named ``index``. Floats stay numbers, the rest become text."""
    import pandas as pd

    frame = frame.reset_index(names=index) if index else frame
    kinds = {c: "float" if pd.api.types.is_float_dtype(frame[c]) else
             "int" if pd.api.types.is_integer_dtype(frame[c]) else "string" for c in frame.columns}
    records = [dg.TableRecord({str(c): (None if pd.isna(v) else float(v) if kinds[c] == "float" else
                                        int(v) if kinds[c] == "int" else str(v)) for c, v in row.items()})
               for row in frame.to_dict("records")]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(
        columns=[dg.TableColumn(str(c), kinds[c]) for c in frame.columns]))
