"""Sweep workers that share no folder, only the services (issue 33, "no shared filesystem").

Each test starts PostgreSQL (:mod:`adt.postgres`: the Optuna study and MLflow's backend store) and an
``mlflow server`` on it with proxied artifact storage in a folder the workers are never told
(:func:`adt.tracking.server`; they get ``http://127.0.0.1:<port>``). Every worker has its own data folder with
inputs it built itself from the real MDB track of the mirror, and one spec whose paths are relative to that folder
(:mod:`adt.frame.sweep_worker`). Checked: two workers finish exactly the budget and register one champion, whose
files a third process with an empty data folder loads to transcribe a real excerpt; a worker killed (``kill -9``)
after its trial stored an epoch checkpoint has that trial resumed by the other worker from the stores; the servers'
processes are gone afterwards (by pid). Skipped, naming the reason, where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import mdb_excerpt

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[1]
SECONDS = 8  # of the MDB track: the training and validation excerpt
#: Tiny trainings; no pruning (every trial runs all its epochs); a dead worker's trial retried after 5 s.
SPEC = {"train_dirs": ["inputs/shards"], "stats": "inputs/stats", "out_dir": "trials", "register": True,
        "pruner_startup_trials": 1000, "heartbeat": [1, 5]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _postmaster_pid(base_url: str) -> int:
    """The pid of the PostgreSQL server at ``base_url`` (first line of its data folder's ``postmaster.pid``)."""
    import psycopg2

    conn = psycopg2.connect(f"{base_url}/postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            folder = cur.fetchone()[0]
    finally:
        conn.close()
    return int((Path(folder) / "postmaster.pid").read_text().splitlines()[0])


@pytest.fixture
def stores(tmp_path):
    """PostgreSQL and an MLflow tracking server on it (artifacts in ``tmp_path/server-artifacts``): the Optuna URL,
    the tracking URI, the artifacts folder. Afterwards neither server's process (nor the MLflow server's process
    group) is left."""
    from adt import postgres, tracking

    pids = {}
    try:
        with postgres.server() as pg:
            pids["postgres"] = _postmaster_pid(pg)
            artifacts = tmp_path / "server-artifacts"
            with tracking.server(postgres.create_database(pg, "mlflow"), artifacts) as (uri, pid):
                pids["mlflow"] = pid
                yield {"optuna": postgres.create_database(pg, "optuna"), "mlflow": uri, "artifacts": artifacts}
    except postgres.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server can run here: {exc}")
    assert not [name for name, pid in pids.items() if _alive(pid)], pids
    with pytest.raises(ProcessLookupError):
        os.killpg(pids["mlflow"], 0)  # nor a worker of the MLflow server


def _worker(folder: Path, mdb_track: dict, spec: dict) -> dict:
    """A worker's own folder: its data folder ``data`` with the inputs built there from the real track (shards,
    validation features, statistics) and ``spec.json`` (paths relative to ``data``). Returns the spec."""
    from adt.features.stats import TrainingStats

    inputs = folder / "data" / "inputs"
    inputs.mkdir(parents=True)
    item, ref = mdb_excerpt(mdb_track, inputs, SECONDS)
    TrainingStats.of_tracks([item]).save(inputs / "stats")
    spec = {**SPEC, "val": [{"x": "inputs/t.x.npy", "reference": {c: t.tolist() for c, t in ref.items()}}], **spec}
    (folder / "spec.json").write_text(json.dumps(spec))
    return spec


def _spawn(folder: Path, tracking_uri: str) -> subprocess.Popen:
    """``python -m adt.frame.sweep_worker spec.json`` in ``folder``: its own data folder, the MLflow server's URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
           "ADT_DATA_DIR": str(folder / "data"), "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.Popen([sys.executable, "-m", "adt.frame.sweep_worker", "spec.json"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _result(proc: subprocess.Popen, timeout: float = 480) -> tuple[dict, str]:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]), out


def _client(uri: str, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def _one_champion(client) -> object:
    """The registry holds one version of the transcriber, and the champion alias points at it."""
    from adt.tracking import MODEL_NAME

    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert len(versions) == 1 and champion.version == versions[0].version
    return champion


def test_two_workers_sharing_no_folder_finish_the_budget_and_a_third_transcribes_with_the_champion(
        stores, mdb_track, tmp_path, monkeypatch):
    """Budget 3: exactly 3 trials finish between two workers, both name the same best trial, which the worker
    that did not train it fetched from the stores into its own folder; one version is registered (the champion,
    with the study's best F); every checkpoint is in the server's folder, none in a worker's. A third process with
    an empty data folder transcribes a real excerpt with ``models:/adt-frame-crnn@champion``: the same notes as the
    best trial's checkpoint gives."""
    import mlflow
    import optuna
    import pretty_midi
    import soundfile

    from adt import registry
    from adt.frame import trial_store
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import transcribe_file

    folders = [tmp_path / "worker1", tmp_path / "worker2"]
    spec = {"study_name": "stores", "storage": stores["optuna"], "budget": 3,
            "config": {"epochs": 3, "steps_per_epoch": 8, "batch_size": 4, "num_threads": 1}}
    kicks = [_worker(folder, mdb_track, spec)["val"][0]["reference"]["BD"] for folder in folders][0]
    (results, outs) = zip(*[_result(p) for p in [_spawn(f, stores["mlflow"]) for f in folders]])

    trials = optuna.load_study(study_name="stores", storage=stores["optuna"]).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and sum(r["ran_here"] for r in results) == 3, (results, [t.state for t in trials])
    best = max(finished, key=lambda t: (t.value, -t.number))
    assert results[0]["best_trial"] == results[1]["best_trial"] == best.number
    assert [Path(r["model_path"]).is_relative_to(f / "data" / "trials") for r, f in zip(results, folders)] == [True] * 2
    fetched = [o for o in outs if f"trial {best.number}: checkpoint fetched from its MLflow run" in o]
    assert len(fetched) == 1  # by the worker that did not train it; the other had it
    client = _client(stores["mlflow"], monkeypatch)
    champion = _one_champion(client)
    assert [r["model_uri"] is not None for r in results].count(True) == 1
    registered = next(r for r in results if r["model_uri"])  # with the asset check's verdict, as no check runs here
    shipped = registered["shipped_val_f"]
    assert registered["not_worse_than_shipped"] == (registered["best_value"] > 0 and (
        shipped is None or registered["best_value"] >= shipped)), registered
    assert float(champion.tags["val_f"]) == pytest.approx(best.value, abs=1e-6)
    assert len(list(stores["artifacts"].rglob("trial-*.pt"))) == 3
    assert not [p for f in folders for p in (f / "data").rglob("*") if "mlartifacts" in p.parts]
    assert not list(stores["artifacts"].rglob("epochs-*.pt"))  # per-epoch copies removed with their trials

    # the third process: its own empty data folder, only the tracking server's URL
    audio, sr = soundfile.read(mdb_track["wav"])
    wav = tmp_path / "excerpt.wav"
    soundfile.write(wav, audio[: SECONDS * sr], sr)
    third = tmp_path / "third"
    (third / "data").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADT_DATA_DIR": str(third / "data"),
           "MLFLOW_TRACKING_URI": stores["mlflow"], "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-m", "adt.cli", "transcribe", str(wav), "-o", str(third / "out.mid"),
                           "--model", "models:/adt-frame-crnn@champion", "--no-separation"], cwd=third, env=env,
                          capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"models:/adt-frame-crnn@champion (version {champion.version})" in done.stderr

    # the champion's files are the best trial's checkpoint, and transcribe alike
    ckpt = trial_store.fetch(best.user_attrs["mlflow_run_id"], f"model/trial-{best.number:04d}.pt",
                             tmp_path / "best.pt")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/adt-frame-crnn@champion",
                                                      dst_path=str(tmp_path / "champion")))
    assert registry.content_hash(folder / registry.CHECKPOINT) == registry.content_hash(ckpt)
    here = transcribe_file(wav, tmp_path / "here.mid", model=load_model(ckpt), progress=False)

    def notes(path: Path) -> list[tuple[int, float]]:
        return sorted((n.pitch, round(n.start, 3)) for i in pretty_midi.PrettyMIDI(str(path)).instruments
                      for n in i.notes)

    assert notes(third / "out.mid") == notes(tmp_path / "here.mid")
    assert len(notes(third / "out.mid")) == sum(len(v) for v in here.onsets.values())
    # and it hears the kicks: most onsets it writes are real ones (within 50 ms; seeded, so the same every run)
    hits = [t for pitch, t in notes(third / "out.mid") if pitch == 36 and min(abs(t - k) for k in kicks) <= 0.05]
    assert len(hits) >= 5 and len(hits) >= 0.5 * len(notes(third / "out.mid")), (notes(third / "out.mid"), kicks)


def _stored_epoch(client, experiment: str, pid: int, deadline: float) -> tuple[str, int]:
    """Wait for a trial run of the worker ``pid`` to have a per-epoch checkpoint in the stores: (run id, epoch)."""
    from adt import tracking
    from adt.frame import trial_store

    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            for run in client.search_runs([exp.experiment_id], f"tags.`{tracking.PID_TAG}` = '{pid}'"):
                if trial_store.RESUME_TAG in run.data.tags:
                    return run.info.run_id, int(run.data.tags[trial_store.RESUME_TAG])
        time.sleep(0.2)
    raise AssertionError(f"no trial of worker {pid} stored an epoch checkpoint in time")


def test_a_killed_workers_trial_is_resumed_by_the_other_from_the_stores(stores, mdb_track, tmp_path, monkeypatch):
    """Worker A is killed (SIGKILL) once a trial of its has stored an epoch checkpoint in its MLflow run. Worker B,
    sharing no folder with A, sees the trial's heartbeat stop, retries it with the same parameters, fetches A's
    checkpoint from the stores and trains only the epochs after it; the budget of 2 is met exactly, the dead
    trial's run is closed, and one champion is registered."""
    import optuna

    from adt.frame import trial_store

    spec = {"study_name": "resume", "storage": stores["optuna"], "budget": 2,
            "config": {"epochs": 4, "steps_per_epoch": 4, "batch_size": 4, "num_threads": 1}}
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        _worker(folder, mdb_track, spec)
    client = _client(stores["mlflow"], monkeypatch)
    a, b = (_spawn(f, stores["mlflow"]) for f in folders)
    try:
        dead_run, _ = _stored_epoch(client, "adt/transcriber", a.pid, time.monotonic() + 360)  # generous: a loaded machine
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=30)
    finally:
        if a.poll() is None:
            a.kill()
    result, out = _result(b)

    trials = optuna.load_study(study_name="resume", storage=stores["optuna"]).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2 and result["ran_here"] == 2, [(t.number, t.state.name) for t in trials]
    dead = next(t for t in trials if t.user_attrs.get("mlflow_run_id") == dead_run)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == dead.number)
    stored = int(client.get_run(dead_run).data.tags[trial_store.RESUME_TAG])  # its last epoch in the stores
    resumed = retry.user_attrs[trial_store.RESUMED_ATTR]  # the epoch in the file: the tag's, or one newer
    assert dead.state.name == "FAIL" and retry.state.name == "COMPLETE" and retry.params == dead.params
    assert 1 <= stored <= resumed < 4 and sorted(retry.intermediate_values) == list(range(resumed + 1, 5))
    assert f"trial {retry.number} retries trial {dead.number}: its epoch {stored} checkpoint fetched" in out
    assert client.get_run(dead_run).info.status == "FAILED"
    assert trial_store.CLOSED_TAG in client.get_run(dead_run).data.tags
    assert not list((folders[1] / "data" / "trials").glob("epochs-*.pt"))  # removed once the retry finished
    _one_champion(client)


def test_a_spec_names_each_workers_own_paths(tmp_path, monkeypatch):
    """Relative spec paths are read under the worker's own ADT_DATA_DIR and name the inputs alike on every worker
    (the per-epoch checkpoints' ``inputs_key``); absolute ones stay as they are (the local helpers, whose
    fingerprint is the paths as before). A spec without its data, with a bad heartbeat or unreadable, is refused
    saying why. Only artifacts off the machine get per-epoch copies."""
    from adt.frame import sweep_worker, trial_store

    spec = {"train_dirs": ["inputs/shards"], "val": [{"x": "inputs/t.x.npy", "reference": {}}], "out_dir": "trials"}
    keys = []
    for name in ("one", "two"):
        monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / name))
        assert sweep_worker.local("inputs/shards") == tmp_path / name / "inputs" / "shards"
        keys.append(sweep_worker.inputs_key(spec))
    assert keys[0] == keys[1] is not None
    assert sweep_worker.local(str(tmp_path / "x")) == tmp_path / "x" and sweep_worker.local(None) is None
    assert sweep_worker.inputs_key({**spec, "train_dirs": [str(tmp_path / "shards")]}) is None
    assert sweep_worker.inputs_key({**spec, "inputs_key": "given"}) == "given"
    with pytest.raises(ValueError, match="lacks train_dirs, val"):
        sweep_worker.run({"out_dir": "trials"})
    with pytest.raises(ValueError, match="heartbeat must be"):
        sweep_worker.run({**spec, "heartbeat": [1]})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit, match="not a readable JSON sweep spec"):
        sweep_worker.main([str(tmp_path / "bad.json")])
    assert [trial_store.off_machine(u) for u in ("mlflow-artifacts:/1/abc/artifacts", "s3://bucket/x",
                                                 f"file://{tmp_path}", str(tmp_path))] == [True, True, False, False]
