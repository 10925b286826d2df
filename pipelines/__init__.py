"""Dagster definitions of the ADT pipeline (assets grouped by stage; see definitions.py)."""

import warnings

# Output(data_version=...) carries our content keys into Dagster's staleness tracking; it is
# marked beta in Dagster 1.13, which warns on every materialization.
warnings.filterwarnings("ignore", message="Parameter `data_version`")

# `dagster dev -m pipelines` / `dagster asset list -m pipelines` find the definitions here.
from pipelines.definitions import defs  # noqa: E402

__all__ = ["defs"]
