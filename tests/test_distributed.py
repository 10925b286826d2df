"""Scale-out on a real PostgreSQL server (docs/scale-out.md): sweep workers in separate processes
sharing one Optuna study (and MLflow) in PostgreSQL finish exactly the trial budget and register one
champion; a Dagster instance on PostgreSQL runs a job and reads it back; the deploy/ configuration is valid.

The server is started by the tests (:mod:`adt.postgres`: ``initdb`` + ``postgres`` in a temporary
folder, a free port of 127.0.0.1); they skip, naming the reason, where PostgreSQL is not installed
(``scripts/install.sh`` installs it with apt-get where it can)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mdb_excerpt

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server for this module: its base URL ``postgresql://adt@127.0.0.1:<port>``."""
    from adt import postgres

    try:
        with postgres.server() as url:
            yield url
    except postgres.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server can run here: {exc}")


def _env(**extra: str) -> dict:
    """The workers' environment: this checkout first on the path, one thread each."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
            **extra}


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out[-3000:]
        outs.append(out)
    return outs


RACE = """
import sys, time, optuna
from adt.frame.shared_study import run_budget
url, budget = sys.argv[1], int(sys.argv[2])
storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)
study = optuna.load_study(study_name="race", storage=storage)
def objective(trial):
    x = trial.suggest_float("x", 0, 1)
    time.sleep(0.2)
    return x
ran = run_budget(study, storage, objective, budget, budget, lambda m: None,
                 sampler_for=lambda n: optuna.samplers.RandomSampler(seed=n))
print("RAN", ran)
"""


def test_three_workers_never_exceed_the_budget(pg):
    """Three processes race for the last places of a 12-trial budget (0.2 s trials): exactly 12 finish,
    the trials they ran add up to 12, and any trial beyond is FAILED as over budget without running."""
    import optuna

    from adt import postgres

    url = postgres.create_database(pg, "race")
    optuna.create_study(study_name="race", storage=url, direction="maximize")
    outs = _finish([_spawn(["-c", RACE, url, "12"], _env()) for _ in range(3)])
    ran = [int(next(line for line in o.splitlines() if line.startswith("RAN")).split()[1]) for o in outs]
    trials = optuna.load_study(study_name="race", storage=url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 12 and sum(ran) == 12, (ran, [t.state.name for t in trials])
    assert all(t.user_attrs.get("over_budget") for t in trials if t.state.name == "FAIL")
    assert len({t.params["x"] for t in finished}) == 12  # seeded by trial number: no two workers draw alike


def test_two_sweep_workers_share_one_study_and_register_one_champion(pg, mdb_track, tmp_path):
    """Two ``python -m adt.frame.sweep_worker`` processes, Optuna and MLflow both in PostgreSQL, budget 4:
    exactly 4 trials finish, both workers report the same best trial, one model version is registered
    and the champion alias points at it with the study's best validation F."""
    import mlflow
    import optuna

    from adt import postgres, tracking
    from adt.features.stats import TrainingStats

    item, ref = mdb_excerpt(mdb_track, tmp_path, 8)
    TrainingStats.of_tracks([item]).save(tmp_path / "stats")
    optuna_url = postgres.create_database(pg, "optuna")
    mlflow_url = postgres.create_database(pg, "mlflow")
    spec = {"train_dirs": [str(tmp_path / "shards")],
            "val": [{"x": str(item[0]), "reference": {c: t.tolist() for c, t in ref.items()}}],
            "stats": str(tmp_path / "stats"), "out_dir": str(tmp_path / "trials"), "study_name": "shared",
            "storage": optuna_url, "budget": 4, "register": True, "pruner_startup_trials": 2,
            "config": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "num_threads": 1}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = _env(ADT_DATA_DIR=str(tmp_path / "data"), MLFLOW_TRACKING_URI=mlflow_url)
    outs = _finish([_spawn(["-m", "adt.frame.sweep_worker", str(tmp_path / "spec.json")], env) for _ in range(2)])
    results = [json.loads(next(line for line in o.splitlines() if line.startswith("RESULT "))[7:]) for o in outs]

    trials = optuna.load_study(study_name="shared", storage=optuna_url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4 and sum(r["ran_here"] for r in results) == 4, (results, [t.state for t in trials])
    assert results[0]["best_trial"] == results[1]["best_trial"]
    assert [r["model_uri"] is not None for r in results].count(True) == 1  # registered once
    assert all(r["champion_uri"] == f"models:/{tracking.MODEL_NAME}@champion" for r in results)
    mlflow.set_tracking_uri(mlflow_url)
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name = '{tracking.MODEL_NAME}'")
    champion = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")
    assert len(versions) == 1 and champion.version == versions[0].version
    best = max(t.value for t in trials if t.state.name == "COMPLETE")
    assert float(champion.tags["val_f"]) == pytest.approx(best, abs=1e-6) == results[0]["best_value"]


def test_mlflow_tracking_server_on_postgres_keeps_the_artifacts(pg, tmp_path, monkeypatch):
    """``mlflow server`` on PostgreSQL with ``--artifacts-destination``, clients on ``http://``: a run of
    :func:`adt.tracking.run` is stored by the server and its artifact lands in the server's destination,
    not in the client's data folder (docs/scale-out.md)."""
    import signal
    import time
    import urllib.request

    import mlflow

    from adt import postgres, tracking

    port = postgres.free_port()
    env = _env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", DO_NOT_TRACK="true")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", postgres.create_database(pg, "mlflow_server"),
                               "--artifacts-destination", str(tmp_path / "artifacts")], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
        with tracking.run("scaleout", "probe") as run:
            mlflow.log_text("hello", "probe.txt")
        got = mlflow.MlflowClient().get_run(run.info.run_id)
        assert got.info.status == "FINISHED" and got.data.tags[tracking.PID_TAG] == str(os.getpid())
        assert [p.read_text() for p in (tmp_path / "artifacts").rglob("probe.txt")] == ["hello"]
        assert not (tmp_path / "data" / "mlartifacts").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"


def _dagster_home(tmp_path: Path, pg: str, monkeypatch) -> Path:
    from adt import postgres

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML.read_text())
    monkeypatch.setenv("ADT_DAGSTER_PG_URL", postgres.create_database(pg, "dagster"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_dagster_instance_on_postgres_runs_and_reads_back(pg, tmp_path, monkeypatch):
    """deploy/dagster.yaml (storage: postgres, URL from ADT_DAGSTER_PG_URL): a job and an asset
    materialization are stored in PostgreSQL and read back by a second instance."""
    import dagster as dg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    home = _dagster_home(tmp_path, pg, monkeypatch)

    @dg.op
    def one() -> int:
        return 1

    @dg.job
    def trivial():
        one()

    @dg.asset
    def cheap() -> int:
        return 2

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        run_id = trivial.execute_in_process(instance=instance).run_id
        assert dg.materialize([cheap], instance=instance).success
    with dg.DagsterInstance.from_config(str(home)) as again:  # a fresh connection: read back from the server
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert again.get_latest_materialization_event(dg.AssetKey("cheap")) is not None
        assert len(again.get_runs()) == 2


def test_deploy_configuration_is_valid(tmp_path, monkeypatch):
    """deploy/dagster.yaml passes Dagster's instance schema (postgres storage, queued runs, monitoring);
    deploy/celery.yaml passes dagster-celery's executor validation (the one ``dagster-celery worker -y``
    runs), with the broker and backend from the environment. No server, no cluster."""
    import yaml
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load(DAGSTER_YAML.read_text())
    monkeypatch.setenv("ADT_DAGSTER_PG_URL", "postgresql+psycopg2://adt@db.example:5432/dagster")
    checked = process_config(dagster_instance_config_schema(), config)
    assert checked.success, checked.errors
    assert checked.value["storage"]["postgres"]["postgres_url"] == "postgresql+psycopg2://adt@db.example:5432/dagster"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"

    pytest.importorskip("dagster_celery", reason="dagster-celery not installed (pip install dagster-celery)")
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("ADT_CELERY_BROKER", "pyamqp://guest@broker.example//")
    monkeypatch.setenv("ADT_CELERY_BACKEND", "rpc://")
    celery = get_validated_config(str(ROOT / "deploy" / "celery.yaml"))
    assert celery["broker"] == "pyamqp://guest@broker.example//" and celery["include"] == ["pipelines.definitions"]


def test_postgres_is_chosen_by_configuration(monkeypatch):
    """The three stores follow the environment: ADT_OPTUNA_STORAGE (Settings.optuna_storage, the sweeps'
    studies), MLFLOW_TRACKING_URI (adt.tracking), DAGSTER_HOME's dagster.yaml (deploy/dagster.yaml)."""
    from adt import tracking
    from adt.config import Settings

    url = "postgresql+psycopg2://adt@db.example:5432/"
    monkeypatch.setenv("ADT_OPTUNA_STORAGE", url + "optuna")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url + "mlflow")
    assert Settings.from_env().optuna_storage == url + "optuna"
    assert tracking.tracking_uri() == url + "mlflow"
    monkeypatch.delenv("ADT_OPTUNA_STORAGE")
    assert Settings.from_env().optuna_storage == ""  # SQLite under the data folder
