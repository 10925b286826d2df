"""Optuna sweeps of the transcriber on a real recording, tracked in a throwaway MLflow store:
nested trial runs, median pruning, a study shared through RDB storage, the champion alias."""

from __future__ import annotations

import os
import re
import time

import mlflow
import numpy as np
import optuna
import pytest
import torch

from adt.features.stats import TrainingStats
from adt.frame.checkpoint import predict_activations
from adt.frame.recipe import TrainConfig
from adt.vocab import CLASSES_5
from tests.conftest import MDB_CLASSES, mdb_excerpt

MAPPING = MDB_CLASSES
#: trial 0 learns quickly; trial 1 barely moves, so the median pruner stops it after epoch 2
GOOD = {"frame_crnn.hidden": 32, "frame_crnn.layers": 1, "lr": 3e-3, "weight_decay": 1e-4}
BAD = {**GOOD, "lr": 1e-4}


def _one_track(mdb_track, root, seconds: int):
    """:func:`tests.conftest.mdb_excerpt` as (item, the validation list)."""
    item, ref = mdb_excerpt(mdb_track, root, seconds)
    return item, [(item[0], ref)]


@pytest.fixture(scope="module")
def sweeps(mdb_track, tmp_path_factory):
    """Two run_sweep calls on one SQLite study: 2 trials (enqueued good + bad), then 1 more."""
    from adt import tracking
    from adt.frame import champion
    from adt.frame.sweep import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("ADT_DATA_DIR", str(root / "data"))
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    item, val = _one_track(mdb_track, root, 12)
    storage = f"sqlite:///{root / 'optuna.db'}"
    study = optuna.create_study(study_name="frame", storage=storage, direction="maximize")
    study.enqueue_trial(GOOD)
    study.enqueue_trial(BAD)
    config = TrainConfig(epochs=3, steps_per_epoch=5, batch_size=4, num_threads=1)
    kwargs = dict(config=config, study_name="frame", storage=storage, stats=TrainingStats.of_tracks([item]),
                  register=True, pruner_startup_trials=1)
    first = run_sweep([root / "shards"], val, root / "trials", n_trials=2, **kwargs)
    uri_after_first = champion.champion_uri()
    version_after_first = mlflow.MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, "champion").version
    second = run_sweep([root / "shards"], val, root / "trials", n_trials=1, **kwargs)
    # a total budget: the 3 finished trials count, nothing more runs (an interrupted sweep resumes)
    resumed = run_sweep([root / "shards"], val, root / "trials", n_trials=3, budget=3, **{**kwargs, "register": False})
    assert resumed.n_trials == 3 and resumed.best_trial == second.best_trial
    yield {"first": first, "second": second, "storage": storage, "val": val, "x": item[0],
           "uri_after_first": uri_after_first, "version_after_first": version_after_first}
    mp.undo()


def _children(parent_id: str):
    return mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def test_each_trial_is_a_nested_run_with_curves_and_model(sweeps):
    first = sweeps["first"]
    children = _children(first.run_id)
    assert len(children) == 2 and set(children.run_id) == set(first.trial_run_ids)
    client = mlflow.MlflowClient()
    for run_id in first.trial_run_ids:
        run = client.get_run(run_id)
        assert run.data.params["architecture"] == "frame_crnn" and "lr" in run.data.params
        assert {"loss", "val_f", "lr"} <= set(run.data.metrics)
    good = client.get_run(first.trials[0]["mlflow_run_id"])
    assert len(client.get_metric_history(good.info.run_id, "val_f")) == 3  # one point per epoch
    assert [a.path for a in client.list_artifacts(good.info.run_id, "model")] == ["model/trial-0000.pt"]


def test_median_pruner_stops_the_poor_trial(sweeps):
    states = [t["state"] for t in sweeps["first"].trials]
    assert states == ["COMPLETE", "PRUNED"]
    pruned = mlflow.MlflowClient().get_run(sweeps["first"].trials[1]["mlflow_run_id"])
    assert pruned.data.tags["optuna.state"] == "PRUNED" and pruned.info.status == "FINISHED"
    first = sweeps["first"]
    assert first.best_trial == 0 and first.best_value > 0.1 and first.params == GOOD


def test_shared_storage_continues_the_study(sweeps):
    second = sweeps["second"]
    assert second.n_trials == 3 and [t["trial"] for t in second.trials] == [0, 1, 2]
    assert len(optuna.load_study(study_name="frame", storage=sweeps["storage"]).trials) == 3
    assert len(_children(second.run_id)) == 1


def test_best_model_registered_with_champion_alias(sweeps):
    from adt import tracking
    from adt.frame import champion

    assert sweeps["uri_after_first"] == "models:/adt-frame-crnn@champion"
    assert sweeps["first"].model_uri == f"models:/adt-frame-crnn/{sweeps['version_after_first']}"
    second = sweeps["second"]
    version = mlflow.MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, "champion").version
    # registration is idempotent per study trial: the same best trial again reuses its version
    expected = 1 if second.best_trial == sweeps["first"].best_trial else 2
    assert second.model_uri == f"models:/adt-frame-crnn/{version}" and int(version) == expected
    assert len(mlflow.MlflowClient().search_model_versions(f"name='{tracking.MODEL_NAME}'")) == expected
    from adt import registry

    model = registry.load(champion.champion_uri())  # weights only
    act = predict_activations(model, np.load(sweeps["x"])[:500])
    assert act.shape == (500, 5) and model.feature_type == "log_mel"
    # the thesis's peak picking, its floor tuned per class on validation (adt.frame.peaks.tune_min_peak)
    assert model.peak_picking["threshold"] == 0.1 and set(model.peak_picking["min_peak"]) == set(CLASSES_5)
    assert torch.is_tensor(model.mean) and model.architecture == "frame_crnn"
    tags = mlflow.MlflowClient().get_model_version(tracking.MODEL_NAME, version).tags
    assert tags["transcriber_input"] == "separated" and '"min_peak"' in tags["peak_picking"]


def test_champion_moves_only_for_a_better_or_incomparable_model(sweeps):
    from adt import tracking
    from adt.frame import champion

    client = mlflow.MlflowClient()
    champ = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")
    evaluation, score = champ.tags["evaluation"], float(champ.tags["val_f"])
    assert score == pytest.approx(sweeps["second"].best_value, abs=1e-6)
    # another version (a copy of the champion's files), scored lower on the same validation data: challenger,
    # the champion stays
    other = client.create_model_version(tracking.MODEL_NAME, champ.source, run_id=champ.run_id).version
    assert champion.promote(other, score - 0.1, evaluation)[0] is False
    assert client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version == champ.version
    assert str(client.get_model_version_by_alias(tracking.MODEL_NAME, "challenger").version) == str(other)
    # scored on other validation data: the scores do not compare, the newer registration wins
    moved, why = champion.promote(other, score - 0.1, "other-validation-set")
    assert moved and "other validation data" in why
    assert str(client.get_model_version_by_alias(tracking.MODEL_NAME, "champion").version) == str(other)
    champion.promote(champ.version, score, evaluation)  # restore for the tests after this one


@pytest.mark.faults
def test_transcribe_loads_the_champion_never_a_lite_or_a_stand_in(sweeps):
    """adt transcribe's default is the champion (a trimmed ``lite`` version only when asked for); a champion
    whose artifact is broken is an error (exit 2 in the CLI), not silently another version."""
    from adt import tracking
    from adt.transcribe.models import ModelLoadError, load_transcriber

    client = mlflow.MlflowClient()
    champ = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")
    client.set_model_version_tag(tracking.MODEL_NAME, champ.version, "shipped_val_f", "0.0")  # it beat the shipped
    made = client.get_model_version(tracking.MODEL_NAME, champ.version)
    lite = client.create_model_version(tracking.MODEL_NAME, made.source, run_id=made.run_id,
                                       tags={"trimmed": "true"})
    client.set_registered_model_alias(tracking.MODEL_NAME, "lite", lite.version)
    model, source = load_transcriber(None)
    assert source == f"models:/adt-frame-crnn@champion (version {champ.version})"  # which version it is
    assert model.architecture == "frame_crnn"
    assert load_transcriber("lite")[1] == f"models:/adt-frame-crnn@lite (version {lite.version})"
    client.delete_registered_model_alias(tracking.MODEL_NAME, "champion")
    try:  # no champion: the latest version that is not a trimmed one
        assert load_transcriber(None)[1] == f"models:/adt-frame-crnn/{int(lite.version) - 1}"
        broken = client.create_model_version(tracking.MODEL_NAME, "/nonexistent/model", run_id=None)
        client.set_registered_model_alias(tracking.MODEL_NAME, "champion", broken.version)
        with pytest.raises(ModelLoadError, match="champion"):
            load_transcriber(None)
    finally:
        client.set_registered_model_alias(tracking.MODEL_NAME, "champion", champ.version)


def test_a_champion_worse_than_the_shipped_model_is_not_the_default(sweeps):
    """The registered version carries the shipped transcriber's F on the same validation data; when the shipped
    one scored higher, ``adt transcribe`` uses it and says why; a shipped checkpoint other than the one scored
    (another SHA-256) does not count."""
    from adt import tracking
    from adt.frame.shipped import SHIPPED_F_TAG, SHIPPED_SHA_TAG, sha256
    from adt.transcribe.models import load_transcriber
    from adt.transcribe.transcriber import pretrained_path

    client = mlflow.MlflowClient()
    champ = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")
    tags = champ.tags
    # scored by the sweep itself: the shipped model on the sweep's validation excerpt, same peak picking
    assert tags[SHIPPED_SHA_TAG] == sha256(pretrained_path()) and 0.0 <= float(tags[SHIPPED_F_TAG]) <= 1.0
    try:
        client.set_model_version_tag(tracking.MODEL_NAME, champ.version, SHIPPED_F_TAG, "0.0")
        assert load_transcriber(None)[1].startswith("models:/adt-frame-crnn@champion")
        client.set_model_version_tag(tracking.MODEL_NAME, champ.version, SHIPPED_F_TAG, "1.0")
        model, what = load_transcriber(None)
        assert what.startswith(str(pretrained_path())) and "beats version" in what
        assert model.input_level_db is not None  # the shipped checkpoint, not the champion
        client.set_model_version_tag(tracking.MODEL_NAME, champ.version, SHIPPED_SHA_TAG, "0" * 64)
        assert load_transcriber(None)[1].startswith("models:/adt-frame-crnn@champion")
    finally:
        for key, value in tags.items():
            client.set_model_version_tag(tracking.MODEL_NAME, champ.version, key, value)


def test_a_sweep_fine_tunes_a_given_network(sweeps, tmp_path):
    """``init_path``: every trial starts from that checkpoint (its widths stay, only lr and weight decay are
    drawn, in the fine-tuning range)."""
    from adt.frame.checkpoint import load_model
    from adt.frame.sweep import FINETUNE_LR_RANGE, run_sweep
    from adt.transcribe.transcriber import pretrained_path

    shipped = load_model(pretrained_path())
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, num_threads=1, tune_peak_picking=False)
    result = run_sweep([sweeps["x"].parent / "shards"], sweeps["val"], tmp_path / "trials", n_trials=1,
                       config=config, study_name="finetune", storage=f"sqlite:///{tmp_path / 'ft.db'}",
                       init_path=pretrained_path())
    tuned = load_model(result.model_path)
    assert tuned.config == shipped.config and tuned.input_level_db == shipped.input_level_db
    assert FINETUNE_LR_RANGE[0] <= result.params["lr"] <= FINETUNE_LR_RANGE[1]
    assert {k: v for k, v in result.params.items() if k not in ("lr", "weight_decay")} == \
        {k: v for k, v in shipped.hparams.items() if k not in ("lr", "weight_decay")}
    moved = [not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), shipped.state_dict().values())]
    assert any(moved)  # trained, from the shipped weights (same shapes)


def test_bad_arguments(sweeps, tmp_path):
    from adt.frame.sweep import run_sweep

    with pytest.raises(ValueError, match="validation tracks"):
        run_sweep([tmp_path], [], tmp_path, n_trials=1)
    with pytest.raises(ValueError, match="at least one"):
        run_sweep([tmp_path], sweeps["val"], tmp_path, n_trials=0)


def test_all_architectures_study_has_one_model_per_architecture(sweeps, tmp_path):
    """Architecture as a categorical parameter: one enqueued trial per architecture, a best model each."""
    pytest.importorskip("adt.frame.architectures")
    from adt.frame.sweep import run_sweep
    from adt.frame.checkpoint import load_model

    storage = f"sqlite:///{tmp_path / 'all.db'}"
    study = optuna.create_study(study_name="all", storage=storage, direction="maximize")
    study.enqueue_trial({"architecture": "frame_crnn", **GOOD})
    study.enqueue_trial({"architecture": "rnn", "rnn.cell": "gru", "rnn.layers": 2, "rnn.hidden": 72})
    shards = sweeps["x"].parent / "shards"
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, num_threads=1)
    result = run_sweep([shards], sweeps["val"], tmp_path / "trials", n_trials=2, config=config,
                       architectures=("frame_crnn", "rnn"), study_name="all", storage=storage)
    assert [t["architecture"] for t in result.trials] == ["frame_crnn", "rnn"]
    assert set(result.per_architecture) == {"frame_crnn", "rnn"}
    rnn = load_model(result.per_architecture["rnn"]["model_path"])
    assert type(rnn).__name__ == "RNN" and rnn.config["hidden"] == 72
    assert predict_activations(rnn, np.load(sweeps["x"])[:400]).shape == (400, 5)


@pytest.mark.faults
def test_a_dead_trial_is_retried_and_resumes_its_epochs(mdb_track, tmp_path, monkeypatch):
    """A sweep process killed during trial 0, after its first epoch: the next sweep marks the trial FAILED
    (no heartbeat), retries its parameters, and the retry trains only epochs 2 and 3 (per-epoch checkpoint)."""
    import time

    from adt.cache import cache_key
    from adt.frame import shared_study, sweep
    from adt.frame.recipe import train_model

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setattr(shared_study, "HEARTBEAT_S", 1)
    monkeypatch.setattr(shared_study, "GRACE_S", 1)
    item, val = _one_track(mdb_track, tmp_path, 8)
    config = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=4, num_threads=1)
    stats = TrainingStats.of_tracks([item])
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    # the dead process: trial 0 RUNNING with a last heartbeat, and the checkpoint of its first epoch
    rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="dead", storage=rdb, direction="maximize")
    study.enqueue_trial(GOOD)
    trial = study.ask()
    params = sweep.suggest_params(trial, "frame_crnn")
    rdb.record_heartbeat(trial._trial_id)
    ckpt = tmp_path / "trials" / f"epochs-{cache_key('frame_crnn', params)[:16]}.pt"

    def killed(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model([tmp_path / "shards"], val, config, "frame_crnn", params, stats=stats, checkpoint=ckpt,
                    on_epoch=killed)
    assert ckpt.is_file()
    time.sleep(2.5)
    result = sweep.run_sweep([tmp_path / "shards"], val, tmp_path / "trials", n_trials=1, budget=1, config=config,
                             study_name="dead", storage=storage, stats=stats)
    trials = optuna.load_study(study_name="dead", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == trials[0].params
    assert sorted(trials[1].intermediate_values) == [2, 3]  # resumed after epoch 1
    assert result.best_trial == 1 and not ckpt.exists()


@pytest.mark.faults
def test_a_trial_left_running_without_heartbeats_does_not_hold_the_budget(tmp_path, monkeypatch):
    """A RUNNING trial with no heartbeat (a process of a release before heartbeats, killed) is marked FAILED once
    GRACE_S old, so a worker on a budget of 1 runs its trial instead of waiting for it forever."""
    from adt.frame import shared_study

    monkeypatch.setattr(shared_study, "GRACE_S", 1)
    monkeypatch.setattr(shared_study, "POLL_S", 0.1)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="orphan", storage=storage, direction="maximize")
    study.ask()  # RUNNING for good: no heartbeat, its process gone
    time.sleep(1.5)
    logs = []
    ran = shared_study.run_budget(study, storage, lambda trial: 1.0, budget=1, n_trials=1, log=logs.append)
    assert ran == 1 and [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs[shared_study.WORKER_ATTR].endswith(f":{os.getpid()}")
    assert any("trial 0 was left RUNNING without heartbeats" in line for line in logs)


def test_two_local_workers_run_the_same_trials_as_one(mdb_track, tmp_path, monkeypatch):
    """On 2 cores a sweep of budget 2 runs its trials in two processes (a ``sweep_worker`` helper started by
    run_sweep, sharing the SQLite study and MLflow store): exactly 2 trials between them, the best model
    registered once (by this process), and the same trials (parameters and scores) as one process gives.
    (The wall-time gain: docs/scale-out.md.)"""
    from adt import tracking
    from adt.frame import champion, shared_study, sweep

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    item, val = _one_track(mdb_track, tmp_path, 8)
    config = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, num_threads=1)
    kwargs = dict(n_trials=2, budget=2, config=config, stats=TrainingStats.of_tracks([item]),
                  storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert shared_study.local_workers(("frame_crnn",), config, 2) == min(2, len(os.sched_getaffinity(0)))
    logs = []
    two = sweep.run_sweep([tmp_path / "shards"], val, tmp_path / "two", study_name="two", workers=2, register=True,
                          log=logs.append, **kwargs)
    one = sweep.run_sweep([tmp_path / "shards"], val, tmp_path / "one", study_name="one", workers=1, **kwargs)
    # the helper ran what this process did not (both, when its start took longer than a trial here)
    helper = [int(re.search(r"ran (\d+) trial", line).group(1)) for line in logs if "sweep helper 1: ran" in line]
    assert two.n_trials == 2 and helper and len(two.trial_run_ids) + helper[0] == 2
    assert [(t["params"], t["val_f"]) for t in two.trials] == [(t["params"], t["val_f"]) for t in one.trials]
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{tracking.MODEL_NAME}'")
    assert len(versions) == 1 and champion.champion_uri() == f"models:/{tracking.MODEL_NAME}@champion"
    monkeypatch.setenv("ADT_JOBS", "0")
    with pytest.raises(ValueError, match="ADT_JOBS"):
        shared_study.local_workers(("frame_crnn",), config, 2)
