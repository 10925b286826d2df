"""The SQL stores several workers share (Optuna's RDB storage, MLflow's tracking store on PostgreSQL or SQLite):
opening a fresh one from several processes at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy.exc

T = TypeVar("T")


def retry_on_schema_race(fn: Callable[[], T], attempts: int = 8, wait_s: float = 1.0) -> T:
    """``fn()``, again after a pause when it fails with a database error: workers that open a fresh
    database at the same time all create its tables (Optuna's ``create_all``, MLflow's migrations) and all
    but one fail on PostgreSQL's unique constraints; the retry finds the tables made."""
    for attempt in range(attempts):
        try:
            return fn()
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_s * (1 + attempt))
    raise AssertionError("unreachable")
