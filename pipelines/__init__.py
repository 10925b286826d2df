"""Dagster definitions of the ADT pipeline (assets grouped by stage; see definitions.py)."""

import warnings

import dagster as dg

# Output(data_version=...) carries our content keys into Dagster's staleness tracking; it is
# marked beta in Dagster 1.13, which warns on every materialization: Dagster's beta warnings of the
# asset factory's call are left out (by class and module, not by text).
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=r"pipelines\.assets")

# `dagster dev -m pipelines` / `dagster asset list -m pipelines` find the definitions here.
from pipelines.definitions import defs  # noqa: E402

__all__ = ["defs"]
