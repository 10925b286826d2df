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
