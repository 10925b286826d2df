"""Asset values in PostgreSQL: the I/O manager for steps on several processes or machines that share no disk
for ``DAGSTER_HOME/storage`` (the Celery executor's workers, ``docs/scale-out.md``).

Selected by configuration: with ``ADT_IO_PG_URL`` set (:data:`PG_URL_ENV`, e.g. the PostgreSQL server of
Dagster's own storage, ``postgresql+psycopg2://user:password@host:5432/dagster``), :func:`io_manager_from_env`
gives :class:`PostgresJsonIOManager`; without it, the file-based :class:`pipelines.io_manager.JsonIOManager` (the
default). Each value is the envelope of :func:`pipelines.io_manager.encode` (the same encoding, read back by
:func:`pipelines.io_manager.decode`: typed stage results, never pickles), stored as JSON text (NaN and infinity
kept as the file manager keeps them) in one table, :data:`TABLE`, one row per asset key and partition
(``''``: unpartitioned). A write is one ``INSERT ... ON CONFLICT DO UPDATE`` in one transaction: a crashed
step leaves the previous value or the new one, never half of one; the table is created on first use under a
transaction-scoped advisory lock (several workers may start at once).

What it does not do: the values name files in the data folder (Parquet tables, checkpoints, stems: a
result's ``path``/``dir`` fields), so steps on several machines still need those files; on one machine with
several Celery workers they are on the same disk (``ADT_DATA_DIR``). Moving the files themselves between
machines is the artifact server's part (MLflow's ``--artifacts-destination``, docs/scale-out.md).

The driver is ``psycopg2`` (LGPL-3.0 with exceptions, used unmodified; already a dependency of
dagster-postgres); one connection per read or write (a step makes a handful).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.io_manager import StoredValueGone, decode, encode

#: The environment variable that selects this I/O manager and names its server (SQLAlchemy or libpq URL).
PG_URL_ENV = "ADT_IO_PG_URL"
#: The table of the values.
TABLE = "adt_asset_values"
#: The advisory lock key that serializes the table's creation (any constant; "adt" in ASCII).
_DDL_LOCK = 0x616474
_DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    asset_key text NOT NULL,
    partition_key text NOT NULL DEFAULT '',
    value text NOT NULL,
    run_id text,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_key, partition_key))"""
_UPSERT = f"""INSERT INTO {TABLE} (asset_key, partition_key, value, run_id, stored_at)
    VALUES (%s, %s, %s, %s, now())
    ON CONFLICT (asset_key, partition_key)
    DO UPDATE SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, stored_at = EXCLUDED.stored_at"""


def libpq_url(url: str) -> str:
    """``url`` as psycopg2 takes it: SQLAlchemy's ``postgresql+psycopg2://`` (the form the other stores use) as
    ``postgresql://``.

    Raises:
        ValueError: not a PostgreSQL URL (the message names the variable).
    """
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    shown = url.split("@")[-1] if "@" in url else url  # never print a password
    raise ValueError(f"{PG_URL_ENV}: not a PostgreSQL URL (...{shown}); expected "
                     "postgresql+psycopg2://user:password@host:5432/database")


def _where(url: str) -> str:
    """The server and database of ``url`` without user or password, for messages and metadata."""
    return libpq_url(url).split("@")[-1].removeprefix("postgresql://")


class ValueTable:
    """The table of values on the server of ``url`` (:data:`TABLE`; created on first use)."""

    def __init__(self, url: str, connect_timeout_s: int = 10):
        self.url = libpq_url(url)
        self.connect_timeout_s = connect_timeout_s
        self._created = False

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in one transaction (committed at the end, rolled back on an error); the table exists.

        Raises:
            dagster.Failure: the server cannot be reached (named, without the password).
        """
        import psycopg2

        try:
            conn = psycopg2.connect(self.url, connect_timeout=self.connect_timeout_s)
        except psycopg2.OperationalError as exc:
            raise dg.Failure(f"asset values in PostgreSQL ({PG_URL_ENV}): cannot reach {_where(self.url)}: "
                             f"{str(exc).strip()}") from None
        try:
            with conn, conn.cursor() as cur:
                if not self._created:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                    cur.execute(_DDL)
                yield cur
            self._created = True
        finally:
            conn.close()

    def put(self, asset: str, partition: str | None, text: str, run_id: str | None) -> None:
        """Store ``text`` (a JSON document) as ``asset``'s value (of ``partition``), replacing any, atomically."""
        with self._transaction() as cur:
            cur.execute(_UPSERT, (asset, partition or "", text, run_id))

    def get(self, asset: str, partitions: Sequence[str | None]) -> dict[str, str]:
        """The stored JSON text of ``asset`` for each of ``partitions`` that has one (``''``: unpartitioned)."""
        with self._transaction() as cur:
            cur.execute(f"SELECT partition_key, value FROM {TABLE} WHERE asset_key = %s AND partition_key = ANY(%s)",
                        (asset, [p or "" for p in partitions]))
            return dict(cur.fetchall())


def _asset_name(context) -> str:
    return "/".join(context.asset_key.path) if context.has_asset_key else "/".join(context.get_identifier())


def _label(asset: str, partition: str | None) -> str:
    return f"{asset}[{partition}]" if partition else asset


class PostgresJsonIOManagerImpl(dg.IOManager):
    """The I/O manager :class:`PostgresJsonIOManager` builds (module docstring)."""

    def __init__(self, url: str):
        self.table = ValueTable(url)
        self.where = _where(url)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Store ``obj``'s envelope; its place is metadata ``stored_value`` (server, table, key).

        Raises:
            TypeError: ``obj`` is not JSON data (:func:`pipelines.io_manager.to_json_data` names where).
            dagster.DagsterInvariantViolationError: one output for several partitions.
        """
        asset = _asset_name(context)
        partition = None
        if context.has_asset_key and context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise dg.DagsterInvariantViolationError(f"{asset}: one partition per run (got {len(keys)})")
            partition = keys[0]
        text = json.dumps(encode(obj, _label(asset, partition)), sort_keys=True)
        self.table.put(asset, partition, text, context.run_id)
        context.add_output_metadata({"stored_value": dg.MetadataValue.text(
            f"postgresql {self.where} {TABLE}[{_label(asset, partition)}]")})

    def load_input(self, context: dg.InputContext) -> Any:
        """The stored value; of several partitions, ``{partition: value}`` of those stored (as Dagster's
        ``UPathIOManager``: none stored is None for one partition with ``allow_missing_partitions``).

        Raises:
            pipelines.io_manager.StoredValueGone: a value (partition) never stored, unless the input allows it.
            ValueError: a stored document that is not a value of :func:`pipelines.io_manager.encode`.
        """
        asset = _asset_name(context)
        stage = context.asset_key.path[-1] if context.has_asset_key else None
        partitioned = context.has_asset_key and context.has_asset_partitions
        partitions = list(context.asset_partition_keys) if partitioned else [None]
        if not partitions:
            return None
        stored = self.table.get(asset, partitions)
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        missing = [p for p in partitions if (p or "") not in stored]
        if missing and not (partitioned and allow_missing):
            raise StoredValueGone(f"no stored value of {_label(asset, missing[0])} in {TABLE} on {self.where} "
                                  "(never materialized with this I/O manager): materialize it again")
        values = {p: decode(json.loads(stored[p or ""]), f"{TABLE}[{_label(asset, p)}]", stage)
                  for p in partitions if p not in missing}
        if not partitioned:
            return values[None]
        if len(partitions) == 1:
            return values.get(partitions[0])
        return values


class PostgresJsonIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values as JSON in PostgreSQL (:mod:`pipelines.pg_io_manager`), for workers that share no disk for
    ``DAGSTER_HOME/storage``; ``url`` is read in each process (``dg.EnvVar``: never written to the run's config)."""

    url: str = Field(description="PostgreSQL URL of the values' database (postgresql+psycopg2://user:password@"
                                 "host:5432/database); by default from ADT_IO_PG_URL.")

    def create_io_manager(self, context: dg.InitResourceContext) -> PostgresJsonIOManagerImpl:
        """Raises:
            ValueError: ``url`` is not a PostgreSQL URL."""
        return PostgresJsonIOManagerImpl(self.url)


def io_manager_from_env() -> dg.ConfigurableIOManagerFactory:
    """The code location's ``io_manager``: :class:`PostgresJsonIOManager` when ``ADT_IO_PG_URL`` is set (its
    value read in each step's process), else the file-based :class:`pipelines.io_manager.JsonIOManager`.

    Raises:
        ValueError: ``ADT_IO_PG_URL`` is set but is not a PostgreSQL URL.
    """
    from pipelines.io_manager import JsonIOManager

    url = os.environ.get(PG_URL_ENV, "")
    if not url:
        return JsonIOManager()
    libpq_url(url)  # a bad value fails at import, naming the variable, not in the first step
    return PostgresJsonIOManager(url=dg.EnvVar(PG_URL_ENV))


def is_stored(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> bool:
    """Whether the configured I/O manager (:func:`io_manager_from_env`) holds a value of ``key`` (``partition``):
    a row of :data:`TABLE`, or the JSON file under ``instance``'s storage directory."""
    from pipelines.io_manager import stored_value_path

    url = os.environ.get(PG_URL_ENV, "")
    if not url:
        return stored_value_path(instance.storage_directory(), key, partition).is_file()
    return bool(ValueTable(url).get("/".join(key.path), [partition]))
