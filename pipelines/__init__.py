"""Dagster definitions of the ADT pipeline (assets grouped by stage; see definitions.py)."""
