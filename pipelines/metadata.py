"""Dagster metadata a person reads: MLflow runs as links."""

from __future__ import annotations

import dagster as dg


def mlflow_run(run_id: str | None) -> dict:
    """``mlflow_run_id`` (text) and ``mlflow_run`` (a link to the run in ``make ui``'s MLflow,
    :func:`adt.tracking.run_url`) for an asset's metadata; empty without a run."""
    if not run_id:
        return {}
    from adt.tracking import run_url

    url = run_url(run_id)
    return {"mlflow_run_id": str(run_id), **({"mlflow_run": dg.MetadataValue.url(url)} if url else {})}
