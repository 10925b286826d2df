"""A Dagster run on a distributed executor (docs/scale-out.md): dagster-celery's executor, two Celery workers
started by ``python -m pipelines.celery_workers``, a Redis broker and result backend (:mod:`adt.broker`),
Dagster's run and event storage, the asset values (:mod:`pipelines.pg_io_manager`) and MLflow's runs in one
PostgreSQL server (:mod:`adt.postgres`), MLflow's tracking server with proxied artifact storage
(:func:`adt.tracking.server`) holding the artifacts and the data folder's store (``ADT_DATA_STORE``,
:mod:`adt.data_store`); then everything is stopped and no process of it is left.

The jobs are the pipeline's own, tiny profile: ``adt_kit_catalogue``, ``adt_raw_datasets`` for the generated
``demo`` dataset (raw_dataset -> dataset_tables: renders six 8 s tracks, about 25 s on 2 cores) and
``adt_downstream`` for ``tracks``, ``onsets`` and ``groove_scores`` (``tracks`` and ``groove_scores`` run at the same
time, on the two workers; ``groove_scores`` is empty without the Groove dataset). Between the jobs the workers stop and the
data folder is moved away, as if the machine that computed the raw dataset were gone: new workers on an empty
folder run the downstream job, which finds its files through the store alone. Loopback only; every wait has a timeout. Skipped, naming the reason, where ``redis-server`` or
PostgreSQL is not installed (``scripts/install.sh`` installs both with apt-get where it can).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("adt-1", "adt-2")


def _listener(port: int) -> int:
    """The pid of the process listening on TCP ``port`` of 127.0.0.1 (Linux ``/proc``)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return int(fd.parts[2])
    raise AssertionError(f"no process listens on 127.0.0.1:{port}")


def _tree(pid: int) -> set[int]:
    """``pid`` and its descendants now."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            parents.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += parents.get(p, [])
    return out


def _identities(pids: set[int]) -> dict[int, str]:
    from adt.atomic import process_start

    return {p: s for p in pids if (s := process_start(p)) is not None}


def _left(identities: dict[int, str]) -> list[int]:
    """Those of ``identities`` still running (same pid and start; a zombie counts as gone)."""
    from adt.atomic import process_start

    def running(pid: int) -> bool:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat[stat.rindex(")") + 2] != "Z"
        return False

    return sorted(p for p, start in identities.items() if process_start(p) == start and running(p))


class Cluster:
    """PostgreSQL, Redis and two Celery workers on this machine, with the environment the runs need."""

    def __init__(self, tmp: Path):
        self.tmp, self.stack, self.processes = tmp, contextlib.ExitStack(), {}
        self.workers = None

    def start(self, mirror: Path) -> None:
        from adt import broker, postgres

        try:
            self.pg = pg = self.stack.enter_context(postgres.server())
        except postgres.Unavailable as exc:
            pytest.skip(f"no PostgreSQL server can run here: {exc}")
        self.processes["postgres"] = self._server_tree(int(pg.rsplit(":", 1)[1]))
        try:
            redis = self.stack.enter_context(broker.server())
        except broker.Unavailable as exc:
            self.stop()
            pytest.skip(f"no Redis server can run here: {exc}")
        self.processes["redis"] = self._server_tree(int(redis.rsplit(":", 1)[1].split("/")[0]))
        from adt import tracking

        mlflow_uri, mlflow_pid = self.stack.enter_context(
            tracking.server(postgres.create_database(pg, "mlflow"), self.tmp / "artifacts"))
        self.processes["mlflow"] = _identities(_tree(mlflow_pid))
        home = self.tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
        dagster_db = postgres.create_database(pg, "dagster")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                    "DAGSTER_HOME": str(home), "ADT_DAGSTER_PG_URL": dagster_db, "ADT_IO_PG_URL": dagster_db,
                    "ADT_CELERY_BROKER": redis, "ADT_CELERY_BACKEND": redis[:-1] + "1",
                    "ADT_DATA_DIR": str(self.tmp / "data"), "ADT_DATA_MIRROR": str(mirror), "ADT_PROFILE": "tiny",
                    "MLFLOW_TRACKING_URI": mlflow_uri, "ADT_DATA_STORE": "mlflow-artifacts:/adt-data",
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                    "DO_NOT_TRACK": "true", "MLFLOW_LOGGING_LEVEL": "WARNING"}
        self.env.pop("ADT_EXECUTOR", None)
        self.processes["workers"] = {}
        self.start_workers()

    def start_workers(self) -> None:
        """Two workers (a launcher holding the data folder's lock), ready; their processes recorded."""
        self.log = self.tmp / f"workers-{len(self.processes['workers'])}.log"
        with open(self.log, "w") as fh:
            self.workers = subprocess.Popen([sys.executable, "-m", "pipelines.celery_workers", "--workers", "2",
                                             "--stop-timeout", "60", "--ready-timeout", "150"], cwd=ROOT,
                                            env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        self._wait_ready(180)
        self.processes["workers"] |= _identities(_tree(self.workers.pid))

    def stop_workers(self) -> None:
        """SIGTERM to the launcher (warm shutdown: each worker finishes its step), SIGKILL after 90 s."""
        if self.workers is not None and self.workers.poll() is None:
            self.workers.send_signal(signal.SIGTERM)
            try:
                self.workers.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.workers.kill()
                self.workers.wait(timeout=30)

    def _server_tree(self, port: int) -> dict[int, str]:
        pid = _listener(port)
        tree = _tree(pid)
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if Path(f"/proc/{parent}/comm").read_text().strip() == "runuser":  # adt.postgres's root case
            tree.add(parent)
        return _identities(tree)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while "celery workers ready" not in self.log.read_text():
            assert self.workers.poll() is None, f"workers exited: {self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"workers not ready in {timeout_s} s: {self.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def python(self, script: str, *args: str, timeout_s: float = 240, **env: str) -> dict:
        """Run ``script`` in a fresh interpreter with the cluster's environment; its last ``RESULT {json}`` line."""
        out = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env={**self.env, **env},
                             capture_output=True, text=True, timeout=timeout_s)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        return json.loads([line for line in out.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])

    def stop(self) -> None:
        """Stop the workers, then MLflow, Redis and PostgreSQL."""
        self.stop_workers()
        self.stack.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, shared_datasets):
    c = Cluster(tmp_path_factory.mktemp("celery"))
    try:
        c.start(shared_datasets)
        yield c
    finally:
        c.stop()


def test_second_set_of_workers_on_the_folder_is_refused(cluster):
    """(Before the run test, which moves the data folder away.) The launcher holds the data folder's lock while its
    workers run: a second launcher on the same folder exits at once with status 1, naming the first (its pid), and
    starts no worker."""
    out = subprocess.run([sys.executable, "-m", "pipelines.celery_workers", "--workers", "1", "--name", "other"],
                         cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and f"in use by pid {cluster.workers.pid}" in out.stderr, out.stderr[-2000:]
    assert "celery workers ready" not in out.stdout and cluster.workers.poll() is None


#: The run driver (the orchestrating process, as ``make demo``'s): each job through the Celery executor,
#: recorded as a run of the code location (pipelines.launch).
DRIVER = """
import json, os, sys
import dagster as dg
from pipelines.launch import execute
config = {"resources": {"settings": {"config": {"profile": "tiny", "mirror": os.environ["ADT_DATA_MIRROR"]}}}}
JOBS = {"adt_kit_catalogue": (None, ["kit_catalogue"]), "adt_raw_datasets": ("demo", ["raw_dataset", "dataset_tables"]),
        "adt_downstream": (None, ["tracks", "onsets", "groove_scores"])}
out = []
with dg.DagsterInstance.get() as instance:
    for job in sys.argv[1:]:
        partition, assets = JOBS[job]
        tags = {"dagster/partition": partition} if partition else {}
        result = execute(job, instance, config, tags, [dg.AssetKey(a) for a in assets])
        out.append({"job": job, "run_id": result.run_id, "success": result.success, "pid": os.getpid()})
        if not result.success:
            break
print("RESULT " + json.dumps(out))
"""

#: A fresh process reads the values back through the code location's I/O manager (ADT_IO_PG_URL: PostgreSQL).
LOAD = """
import json
import dagster as dg
from pipelines.definitions import defs
with dg.DagsterInstance.get() as instance, defs.get_asset_value_loader(instance) as loader:
    tables = loader.load_asset_value("dataset_tables", partition_key="demo")
    tracks, onsets = loader.load_asset_value("tracks"), loader.load_asset_value("onsets")
    groove = loader.load_asset_value("groove_scores")
print("RESULT " + json.dumps({"tables": [type(tables).__name__, tables.key, tables.dir, tables.rows],
                              "tracks": [type(tracks).__name__, tracks.key, tracks.path, tracks.datasets],
                              "onsets": [onsets.key, onsets.path], "groove": groove.key}))
"""


def _step_workers(instance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that ran it (dagster-celery's engine event, "Celery worker" metadata)."""
    import dagster as dg

    out = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        if "in celery worker" in (event.message or ""):
            out[event.step_key] = event.event_specific_data.metadata["Celery worker"].value
    return out


def _files(folder: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under ``folder`` that travels (not its store record nor its lock:
    :data:`adt.data_store.LOCAL_ONLY`)."""
    from adt.data_store import LOCAL_ONLY

    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] not in LOCAL_ONLY}


def test_celery_run_on_two_workers_and_values_in_postgres(cluster):
    """The pipeline's jobs on the Celery executor succeed; every step ran in one of the two workers (dagster-celery's
    engine event names the worker; the steps' pids are not the driver's), ``tracks`` and ``groove_scores`` at the
    same time on different workers; the values are rows in PostgreSQL (no JSON file under DAGSTER_HOME).

    No shared folder: after the raw dataset's jobs the workers are stopped and the data folder is moved away; new
    workers on an empty folder run the downstream job, which pulls what it reads from the store (the same bytes as
    the moved folder's). Then that folder is moved away too, and a fresh
    process with an empty folder pulls everything (``python -m adt.data_store pull``) and loads the values, equal to
    the data versions Dagster recorded, their Parquet tables and the audio they name readable."""
    import dagster as dg
    import pandas as pd
    import psycopg2

    from pipelines import automation
    from pipelines.pg_io_manager import TABLE, libpq_url

    data = Path(cluster.env["ADT_DATA_DIR"])
    runs = cluster.python(DRIVER, "adt_kit_catalogue", "adt_raw_datasets", timeout_s=300, ADT_EXECUTOR="celery")
    assert [r["success"] for r in runs] == [True, True], (runs, cluster.log.read_text()[-3000:])
    # the machine that computed the raw dataset is gone: its workers and its folder; new workers, an empty folder
    cluster.processes["workers"] |= _identities(_tree(cluster.workers.pid))
    cluster.stop_workers()
    assert cluster.workers.returncode == 0, cluster.log.read_text()[-3000:]
    first = data.rename(data.with_name("data.first"))
    before = _files(first)
    cluster.start_workers()
    runs += cluster.python(DRIVER, "adt_downstream", timeout_s=300, ADT_EXECUTOR="celery")
    assert [r["success"] for r in runs] == [True, True, True], (runs, cluster.log.read_text()[-3000:])
    assert _files(first) == before  # nothing written there
    pulled = _files(data)
    tables = [k for k in before if k.startswith(("datasets/", "raw/", "audio/"))]
    assert tables and all(pulled.get(k) == before[k] for k in tables), sorted(set(tables) - set(pulled))[:5]
    hosts = {f"{w}@{os.uname().nodename}" for w in WORKERS}
    with mock.patch.dict(os.environ, {"ADT_DAGSTER_PG_URL": cluster.env["ADT_DAGSTER_PG_URL"]}), \
            dg.DagsterInstance.from_config(cluster.env["DAGSTER_HOME"]) as instance:
        for run in runs:
            steps = _step_workers(instance, run["run_id"])
            plan = instance.get_run_by_id(run["run_id"]).step_keys_to_execute
            assert set(steps) == set(plan) and set(steps.values()) <= hosts, (run["job"], steps)
            starts = instance.get_records_for_run(run["run_id"], of_type=dg.DagsterEventType.STEP_START).records
            assert starts and all(r.event_log_entry.dagster_event.pid != run["pid"] for r in starts)
            tags = instance.get_run_by_id(run["run_id"]).tags
            assert automation.PID_TAG not in tags  # a worker's step process is not recorded as the run's
            assert automation._run_process(instance, run["run_id"])[0] == run["pid"]  # the dead-run sensor's
        parallel = _step_workers(instance, runs[2]["run_id"])
        assert parallel["tracks"] != parallel["groove_scores"], parallel  # both workers busy at once
        versions = {key: instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.tags[
            "dagster/data_version"] for key in ("tracks", "onsets", "groove_scores")}

    second = data.rename(data.with_name("data.second"))  # and this one too: a laptop fetching the results
    pull = subprocess.run([sys.executable, "-m", "adt.data_store", "pull"], cwd=ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=120)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    assert _files(data) == {**before, **_files(second)}  # all both folders held, and only that
    loaded = cluster.python(LOAD, timeout_s=120)
    assert loaded["tables"][0] == "DatasetTablesResult" and loaded["tables"][3] > 0
    assert loaded["tracks"][0] == "TracksResult" and loaded["tracks"][3] == ["demo"]
    assert [loaded["tracks"][1], loaded["onsets"][0], loaded["groove"]] == [
        versions["tracks"], versions["onsets"], versions["groove_scores"]]
    tracks = pd.read_parquet(loaded["tracks"][2])
    assert len(tracks) == loaded["tables"][3] and set(tracks.dataset) == {"demo"}
    assert all(Path(p).is_file() for p in tracks.mix_path), tracks.mix_path.tolist()[:3]
    assert len(pd.read_parquet(loaded["onsets"][1])) > 0
    with psycopg2.connect(libpq_url(cluster.env["ADT_IO_PG_URL"])) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT asset_key, partition_key FROM {TABLE} ORDER BY 1, 2")
        rows = cur.fetchall()
    conn.close()
    assert rows == [("dataset_tables", "demo"), ("groove_scores", ""), ("kit_catalogue", ""), ("onsets", ""),
                    ("raw_dataset", "demo"), ("tracks", "")]
    assert not list(Path(cluster.env["DAGSTER_HOME"], "storage").rglob("*.json"))  # no value on the shared disk


def test_postgres_io_manager_round_trip_and_errors(cluster, monkeypatch):
    """The PostgreSQL I/O manager: partitions stored one row each (a rewrite replaces it), NaN kept as the file
    manager keeps it, all partitions read as ``{partition: value}`` with the missing ones skipped where the input
    allows it and refused (named) where not; a value that is not JSON data, a bad URL and an unreachable server
    fail clearly; the environment picks it (``ADT_IO_PG_URL``) or the file-based default."""
    import math

    import dagster as dg

    from adt import postgres
    from pipelines.io_manager import JsonIOManager
    from pipelines.pg_io_manager import PostgresJsonIOManager, ValueTable, io_manager_from_env, is_stored

    url = postgres.create_database(cluster.pg, "values")
    parts = dg.StaticPartitionsDefinition(["a", "b", "c"])

    @dg.asset(partitions_def=parts)
    def per_part(context) -> dict:
        return {"part": context.partition_key, "nan": float("nan"), "run": context.run.run_id}

    @dg.asset(ins={"per_part": dg.AssetIn(partition_mapping=dg.AllPartitionMapping(),
                                          metadata={"allow_missing_partitions": True})})
    def joined(per_part) -> list:
        return sorted(per_part)

    @dg.asset(ins={"per_part": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
    def strict(per_part) -> int:
        return len(per_part)

    @dg.asset
    def opaque() -> object:
        return object()

    @dg.asset
    def plain() -> int:
        return 1

    def run(assets, partition=None, io=None):
        return dg.materialize(assets, partition_key=partition, raise_on_error=False, instance=instance,
                              resources={"io_manager": io or PostgresJsonIOManager(url=url)})

    def error(result) -> str:
        return next(e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure)

    with dg.DagsterInstance.ephemeral() as instance:
        first = run([per_part], "a")
        assert run([per_part], "b").success and run([per_part], "a").success  # "a" twice: replaced
        joined_run = dg.materialize([per_part, joined], selection=[joined], instance=instance, raise_on_error=False,
                                    resources={"io_manager": PostgresJsonIOManager(url=url)})
        assert joined_run.success and joined_run.output_for_node("joined") == ["a", "b"]
        failed = dg.materialize([per_part, strict], selection=[strict], instance=instance, raise_on_error=False,
                                resources={"io_manager": PostgresJsonIOManager(url=url)})
        assert not failed.success and "no stored value of per_part[c]" in error(failed)
        bad = run([opaque])
        assert not bad.success and "asset opaque: value is a builtins.object, not JSON data" in error(bad)
    rows = ValueTable(url).get("per_part", ["a", "b", "c"])
    assert sorted(rows) == ["a", "b"] and first.run_id not in rows["a"]  # the second write of "a" replaced it
    with dg.Definitions(assets=[per_part], resources={"io_manager": PostgresJsonIOManager(url=url)}
                        ).get_asset_value_loader(instance=dg.DagsterInstance.ephemeral()) as loader:
        value = loader.load_asset_value("per_part", partition_key="b")
    assert value["part"] == "b" and math.isnan(value["nan"])

    unreachable = PostgresJsonIOManager(url=f"postgresql+psycopg2://adt:secret@127.0.0.1:{postgres.free_port()}/x")
    with dg.DagsterInstance.ephemeral() as instance:
        down = run([plain], io=unreachable)
    assert not down.success and "cannot reach 127.0.0.1" in error(down) and "secret" not in error(down)
    monkeypatch.setenv("ADT_IO_PG_URL", "mysql://adt:secret@db/x")
    with pytest.raises(ValueError, match="ADT_IO_PG_URL: not a PostgreSQL URL") as bad_url:
        io_manager_from_env()
    assert "secret" not in str(bad_url.value)
    monkeypatch.setenv("ADT_IO_PG_URL", url)
    assert isinstance(io_manager_from_env(), PostgresJsonIOManager)
    with dg.DagsterInstance.ephemeral() as instance:
        key = dg.AssetKey("per_part")
        assert is_stored(instance, key, "a") and not is_stored(instance, key, "c")
    monkeypatch.delenv("ADT_IO_PG_URL")
    assert isinstance(io_manager_from_env(), JsonIOManager)


def test_broker_unavailable_names_the_reason(monkeypatch, tmp_path):
    """No redis-server: :class:`adt.broker.Unavailable` says how to install it; one that exits at once: says so."""
    from adt import broker

    monkeypatch.setattr(broker, "redis_binary", lambda: None)
    with pytest.raises(broker.Unavailable, match="no redis-server installed: scripts/install.sh"):
        with broker.server():
            pass
    failing = tmp_path / "redis-server"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(broker, "redis_binary", lambda: failing)
    with pytest.raises(broker.Unavailable, match="redis-server did not start"):
        with broker.server(timeout_s=5):
            pass


def test_broker_postgres_and_workers_are_gone_after(cluster):
    """Stopping the workers (their launcher's warm shutdown), Redis and PostgreSQL leaves none of their processes
    (checked by pid and start time: the servers' process trees and the workers' launcher and workers)."""
    now = {**cluster.processes, "workers": _identities(_tree(cluster.workers.pid))}  # and the stages' helpers
    # the launcher, two workers (solo pool: the steps run in them) and what their steps left running (e.g.
    # multiprocessing's resource tracker, which lives as long as its worker)
    assert len(now["workers"]) >= 3
    assert len(now["postgres"]) >= 3 and len(now["redis"]) == 1
    assert {name: _left(group) for name, group in now.items()} == {name: sorted(group) for name, group in now.items()}
    cluster.processes["workers"] |= now["workers"]
    every = {p: s for group in cluster.processes.values() for p, s in group.items()}
    cluster.stop()
    assert cluster.workers.returncode == 0, cluster.log.read_text()[-3000:]
    assert _left(every) == [], {name: _left(group) for name, group in cluster.processes.items()}
