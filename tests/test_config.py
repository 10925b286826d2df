"""One run configuration (adt.config.Settings, AdtSettings its Dagster wrapper) and the stage cache helpers."""

from __future__ import annotations

import pytest

from adt.cache import stage_cache, track_file
from adt.config import Settings, get_profile


def test_settings_read_the_environment_once(monkeypatch):
    monkeypatch.setenv("ADT_PROFILE", "tiny")
    monkeypatch.setenv("ADT_DATA_MIRROR", " /some/mirror ")
    s = Settings.from_env(beat_input="separated")
    assert (s.profile, s.mirror, s.beat_input) == ("tiny", "/some/mirror", "separated")
    assert s.get_profile() == get_profile("tiny") == get_profile()
    assert s.quantization_threshold("mdb") == 0.10 and s.quantization_threshold("enst") == s.max_unquantizable_ratio
    monkeypatch.delenv("ADT_PROFILE")
    assert Settings.from_env().profile == "demo"


@pytest.mark.parametrize("field,value,message", [("beat_input", "drums", "beat_input must be one of"),
                                                 ("loss_weighting", "focal", "loss_weighting must be one of"),
                                                 ("tatum_subdivisions", 0, "tatum_subdivisions"),
                                                 ("profile", "huge", "unknown profile")])
def test_bad_settings_name_the_setting(field, value, message):
    with pytest.raises(ValueError, match=message):
        Settings(**{field: value}).validate()


def test_dagster_resource_wraps_the_settings():
    import dagster as dg

    from pipelines.resources import AdtSettings

    resource = AdtSettings(profile="tiny", mirror="", tatum_subdivisions=3, feature_type="log_filtered")
    assert resource.settings() == Settings(profile="tiny", tatum_subdivisions=3, feature_type="log_filtered")
    assert set(Settings.__dataclass_fields__) <= set(AdtSettings.model_fields)
    with pytest.raises(dg.Failure, match="beat_input"):
        AdtSettings(beat_input="drums").settings()


def test_stage_cache_computes_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path))
    calls = []

    def compute(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("x")
        return {"n": 1}

    cache = stage_cache("demo_stage", "1", {"upstream": "k"})
    first = cache.get_or_compute(compute)
    again = stage_cache("demo_stage", "1", {"upstream": "k"}).get_or_compute(compute)
    assert first == again and first["n"] == 1 and len(calls) == 1 and first["stage"] == "demo_stage"
    assert stage_cache("demo_stage", "2", {"upstream": "k"}).key != cache.key
    assert track_file(tmp_path, "groove/drummer1/a", ".wav") == tmp_path / "groove__drummer1__a.wav"


def test_log_once_logs_one_run(tmp_path, monkeypatch):
    import mlflow

    from adt import tracking

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = []
    first = tracking.log_once("beats", "madmom-beats", "key1", lambda: logged.append(mlflow.log_metric("f", 0.9)))
    second = tracking.log_once("beats", "madmom-beats", "key1", lambda: logged.append(1))
    assert first and second == first and len(logged) == 1  # the run logged before, for a link to it
    run = mlflow.get_run(first)
    assert run.data.metrics == {"f": 0.9} and "git_commit" in run.data.tags


def test_every_profile_is_valid_and_a_bad_transcriber_input_is_named(monkeypatch):
    import dataclasses

    from adt.config import PROFILES

    for name in PROFILES:
        Settings(profile=name).validate()
    assert get_profile("standard").transcriber_input == "mix+drums" and get_profile("demo").sweep_trials >= 2
    monkeypatch.setitem(PROFILES, "odd", dataclasses.replace(get_profile("tiny"), name="odd",
                                                             transcriber_input="stems"))
    with pytest.raises(ValueError, match="transcriber_input must be one of"):
        Settings(profile="odd").validate()
