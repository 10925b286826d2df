"""The model registry (adt.registry) on models trained on real data, in a throwaway MLflow store: versions are
weights only and load weights only (a planted pickle is refused, an older pickled version named), registration
is idempotent per source (a crash before the alias, then a re-run: one version, tagged, aliased), every version
has a description and a signature, and the GRU LM gets the alias champion."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from adt.features.stats import TrainingStats
from adt.frame.checkpoint import FRAME_CRNN
from adt.frame.recipe import TrainConfig, train_model
from tests.conftest import mdb_excerpt

PARAMS = {"frame_crnn.hidden": 32, "frame_crnn.layers": 2, "lr": 3e-3, "weight_decay": 1e-4}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A throwaway data folder and MLflow store for the module."""
    root = tmp_path_factory.mktemp("registry")
    mp = pytest.MonkeyPatch()
    mp.setenv("ADT_DATA_DIR", str(root / "data"))
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def model(store, mdb_track):
    """A FrameCRNN (2 x 32 GRU) trained 3 epochs x 5 steps on the first 12 s of a real MDB recording,
    validated on them (best_val_f, tuned peak picking)."""
    item, ref = mdb_excerpt(mdb_track, store, 12)
    config = TrainConfig(epochs=3, steps_per_epoch=5, batch_size=4, num_threads=1)
    trained, _ = train_model([store / "shards"], [(item[0], ref)], config, FRAME_CRNN, PARAMS,
                             stats=TrainingStats.of_tracks([item]))
    trained.features_path = item[0]
    return trained


def _versions(name: str, source_prefix: str) -> list:
    from adt.registry import SOURCE_KEY_TAG

    return [v for v in mlflow.MlflowClient().search_model_versions(f"name='{name}'")
            if v.tags.get(SOURCE_KEY_TAG, "").startswith(source_prefix + "#")]


@pytest.mark.faults
def test_a_crash_before_the_alias_is_finished_by_the_rerun(store, model, monkeypatch):
    """Registered and tagged, then the process dies setting the alias: the re-run registers nothing new, it
    finishes that version (tags, alias champion)."""
    from adt import registry, tracking
    from adt.frame.champion import register_champion

    source = "optuna:crash/trial-0"

    def killed(*args, **kwargs):
        raise RuntimeError("killed while setting the alias")

    with monkeypatch.context() as m:
        m.setattr(registry, "set_alias", killed)
        with tracking.run("transcriber", "sweep[crash]"):
            with pytest.raises(RuntimeError, match="killed"):
                register_champion(model, "eval-crash", source=source, trained_on="MDB 80sRock (12 s)")
    [half] = _versions(tracking.MODEL_NAME, source)
    assert {"transcriber_input", "peak_picking", "val_f", "evaluation"} <= set(half.tags)  # tags before alias
    client = mlflow.MlflowClient()
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")  # never a champion without tags
    with tracking.run("transcriber", "sweep[crash] again"):
        uri = register_champion(model, "eval-crash", source=source, trained_on="MDB 80sRock (12 s)")
    [done] = _versions(tracking.MODEL_NAME, source)
    assert done.version == half.version and uri == f"models:/{tracking.MODEL_NAME}/{half.version}"
    champ = client.get_model_version_by_alias(tracking.MODEL_NAME, "champion")
    assert champ.version == half.version and champ.tags["evaluation"] == "eval-crash"
    assert float(champ.tags["val_f"]) == pytest.approx(model.best_val_f, abs=1e-6)


def _register(model, source: str) -> str:
    from adt import tracking
    from adt.frame.champion import register_champion

    with tracking.run("transcriber", f"register[{source}]"):
        return register_champion(model, "eval-files", source=source, trained_on="MDB 80sRock (12 s)")


def test_a_version_holds_weights_only_and_loads_weights_only(store, model, monkeypatch):
    from adt import registry
    from adt.transcribe.models import load_transcriber

    uri = _register(model, "optuna:files/trial-0")
    folder = mlflow.artifacts.download_artifacts(uri)
    names = {p.name for p in Path(folder).iterdir()} - {"registered_model_meta"}  # MLflow's YAML note
    assert names == {"MLmodel", "checkpoint.pt"}
    info = mlflow.models.get_model_info(uri)
    assert set(info.flavors) == {registry.FLAVOR}  # no mlflow.pytorch / pyfunc pickle flavor
    state = torch.load(f"{folder}/checkpoint.pt", map_location="cpu", weights_only=True)
    assert set(state["state_dict"]) == set(model.state_dict())
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded, what = load_transcriber(uri)
    assert what == uri and calls and all(w is True for w in calls)
    x = torch.from_numpy(np.load(model.features_path)[:300].astype(np.float32))
    torch.testing.assert_close(loaded.activations(x), model.eval().activations(x))
    assert loaded.peak_picking == model.peak_picking and loaded.best_val_f == pytest.approx(model.best_val_f)


class _Planted:
    """Unpickling it opens (creates) the file ``path``: code run by a pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.faults
def test_a_planted_pickle_and_an_old_pickled_version_are_refused(store, model, tmp_path):
    import shutil

    from adt import registry, tracking
    from adt.transcribe.models import ModelLoadError, load_transcriber

    uri = _register(model, "optuna:planted/trial-0")
    folder = tmp_path / "planted"
    shutil.copytree(mlflow.artifacts.download_artifacts(uri), folder)
    marker = tmp_path / "code-ran"
    torch.save({"config": {}, "state_dict": _Planted(marker)}, folder / "checkpoint.pt")
    with pytest.raises(ModelLoadError, match="weights-only"):
        load_transcriber(str(folder))
    with pytest.raises(registry.RegistryError):
        registry.load(folder)
    assert not marker.exists()
    torch.load(folder / "checkpoint.pt", weights_only=False)  # the plant is live: a plain unpickling runs it
    assert marker.exists()
    # a version an older release logged with mlflow.pytorch (a pickle): refused, named, never unpickled
    from mlflow import pytorch as mlflow_pytorch

    mlflow_pytorch.save_model(copy.deepcopy(model), tmp_path / "legacy", serialization_format="pickle",
                              pip_requirements=["torch"])
    client = mlflow.MlflowClient()
    old = client.create_model_version(tracking.MODEL_NAME, (tmp_path / "legacy").as_uri()).version
    with pytest.raises(ModelLoadError, match=f"version {old} of adt-frame-crnn .*older release.*re-run the sweep"):
        load_transcriber(f"models:/adt-frame-crnn/{old}")


def test_a_version_has_a_description_and_a_signature(store, model):
    from adt import tracking
    from adt.frame.champion import MODEL_DESCRIPTION

    uri = _register(model, "optuna:described/trial-3")
    version = uri.rsplit("/", 1)[1]
    client = mlflow.MlflowClient()
    mv = client.get_model_version(tracking.MODEL_NAME, version)
    assert "Trained on MDB 80sRock (12 s)" in mv.description
    assert f"validation micro f-measure (50 ms) {model.best_val_f:.4f}" in mv.description.lower()
    assert "optuna:described/trial-3" in mv.description
    assert client.get_registered_model(tracking.MODEL_NAME).description == MODEL_DESCRIPTION
    sig = mlflow.models.get_model_info(uri).signature
    [spec] = sig.inputs.inputs
    assert spec.name == "features" and spec.type == np.dtype(np.float32) and spec.shape == (-1, -1, 80)
    assert sig.outputs.inputs[0].shape == (-1, -1, 5)


def test_the_lite_version_keeps_its_widths_and_is_registered_once(store, model):
    from adt import tracking
    from adt.transcribe.models import load_transcriber
    from adt.frame import units
    from adt.trimming import criteria
    from adt.trimming.study import register_lite

    full = units.split_recurrent(copy.deepcopy(model))
    small = units.shrink(full, criteria.select(full, criteria.scores(full, "magnitude"), 0.5, "global"))
    source = "trimming:test/trim/magnitude/global seed 0 round 1"
    for _ in range(2):  # the second call (a re-run) finds the first's version
        with tracking.run("trimming", "trimming-study"):
            uri = register_lite(small, source=source, trained_on="MDB 80sRock (12 s)", val_error=0.3,
                                test_error=0.4)
    [version] = _versions(tracking.MODEL_NAME, source)
    assert uri.endswith(f"/{version.version}") and version.tags["trimmed"] == "true"
    assert mlflow.MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, "lite").version == version.version
    loaded, what = load_transcriber("lite")
    assert what == f"models:/adt-frame-crnn@lite (version {version.version})"
    assert loaded.trimmed == units.widths(small) and units.count_parameters(loaded) == units.count_parameters(small)
    x = torch.from_numpy(np.load(model.features_path)[:300].astype(np.float32))
    torch.testing.assert_close(loaded.activations(x), small.eval().activations(x))


def test_trimming_rounds_are_stored_and_read_weights_only(store, model, tmp_path):
    from adt.frame import units
    from adt.trimming import criteria, masking
    from adt.trimming.lottery import _save, load_round

    full = units.split_recurrent(copy.deepcopy(model))
    small = units.shrink(full, criteria.select(full, criteria.scores(full, "magnitude"), 0.5, "local"))
    small.trimmed = units.widths(small)
    masks = masking.prune(full, masking.full(full), 0.2)
    row = {"round": 1, "removed": np.float64(0.5), "widths": units.widths(small), "test_error": np.float32(0.25)}
    _save(tmp_path / "trim.pt", {"model": small, "rewind": full.state_dict(), "row": row})
    _save(tmp_path / "mask.pt", {"model": full, "rewind": full.state_dict(), "masks": masks, "row": row})
    torch.load(tmp_path / "trim.pt", weights_only=True)  # plain tensors and values only
    x = torch.from_numpy(np.load(model.features_path)[:200].astype(np.float32))
    trim, mask = load_round(tmp_path / "trim.pt"), load_round(tmp_path / "mask.pt")
    assert trim["model"].trimmed == units.widths(small) and trim["row"]["removed"] == 0.5
    torch.testing.assert_close(trim["model"].activations(x), small.eval().activations(x))
    assert not hasattr(mask["model"], "trimmed") and set(mask["masks"]) == set(masks)
    torch.testing.assert_close(mask["model"].activations(x), full.eval().activations(x))
    torch.save({"model": full, "rewind": {}, "row": row}, tmp_path / "old.pt")  # an older release's pickled round
    assert load_round(tmp_path / "old.pt") is None  # not unpickled: the round is computed again


@pytest.fixture(scope="module")
def groove_scores(shared_datasets, tmp_path_factory) -> list[np.ndarray]:
    """5-class scores of 8 real Groove MIDI beats (4/4, train split, first in file order)."""
    import pandas as pd
    import pretty_midi

    from adt.lm.corpus import ScoreError, score_from_midi

    out, scores = tmp_path_factory.mktemp("groove"), []
    with zipfile.ZipFile(shared_datasets / "groove-v1.0.0-midionly.zip") as z:
        df = pd.read_csv(io.BytesIO(z.read("groove/info.csv")))
        df = df[(df["beat_type"] == "beat") & (df["time_signature"] == "4-4") & (df["split"] == "train")]
        for name in df["midi_filename"].head(10):
            path = out / name.replace("/", "__")
            path.write_bytes(z.read(f"groove/{name}"))
            try:
                scores.append(score_from_midi(pretty_midi.PrettyMIDI(str(path)), k=5))
            except ScoreError:
                pass
    assert len(scores) >= 6
    return scores


def test_the_gru_lm_is_registered_weights_only_with_the_alias_champion(store, groove_scores):
    from adt import registry, tracking
    from adt.lm.fit import GRU_LM_DESCRIPTION, GRU_LM_NAME, register_gru_lm
    from adt.lm.gru import train_gru_lm

    train, val = groove_scores[:-2], groove_scores[-2:]
    lm, _ = train_gru_lm(train, val, hidden=8, layers=1, epochs=1, segment_tatums=64, seed=0)
    ppl = {"validation": float(lm.perplexity(val))}
    for _ in range(2):  # a re-run reuses the version
        with tracking.run("language_model", "gru-lm"):
            version = register_gru_lm(lm, source="optuna:gru_lm-test", trained_on="8 Groove beats", perplexity=ppl)
    client = mlflow.MlflowClient()
    assert len(client.search_model_versions(f"name='{GRU_LM_NAME}'")) == 1
    assert str(client.get_model_version_by_alias(GRU_LM_NAME, "champion").version) == version
    mv = client.get_model_version(GRU_LM_NAME, version)
    assert "Trained on 8 Groove beats" in mv.description and mv.tags["perplexity.validation"]
    assert client.get_registered_model(GRU_LM_NAME).description == GRU_LM_DESCRIPTION
    sig = mlflow.models.get_model_info(f"models:/{GRU_LM_NAME}@champion").signature
    assert sig.inputs.inputs[0].shape == (-1, 5, -1) and sig.outputs.inputs[0].shape == (-1, -1, 32)
    loaded = registry.load(f"models:/{GRU_LM_NAME}@champion", kind="gru_lm")
    assert loaded.perplexity(val) == pytest.approx(ppl["validation"], rel=1e-6)
    with pytest.raises(registry.RegistryError, match="not a 'transcriber'"):
        registry.load(f"models:/{GRU_LM_NAME}@champion")
