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
    from adt.config import PROFILES

    for name in PROFILES:
        Settings(profile=name).validate()
    assert get_profile("standard").features.transcriber_input == "mix+drums"
    assert get_profile("demo").frame.sweep_trials >= 2
    monkeypatch.setitem(PROFILES, "odd", get_profile("tiny").replace(name="odd", features={"transcriber_input": "stems"}))
    with pytest.raises(ValueError, match="transcriber_input must be one of"):
        Settings(profile="odd").validate()


#: The corpora's keys before the profile was split into sections (the flat ``Profile.dataset_digest``): the
#: corpora of earlier runs keep their caches.
DATA_DIGESTS = {"tiny": "e80073b7e9fb", "demo": "c35b962d299f", "standard": "7369afb5dae4", "full": "1d3ef9a5eaf3"}


def test_profile_sections_keep_the_corpus_keys_and_share_name_and_seed():
    from adt.config import PROFILES, SECTIONS

    assert {name: p.data.digest() for name, p in PROFILES.items()} == DATA_DIGESTS
    for name, profile in PROFILES.items():
        sections = [getattr(profile, s) for s in SECTIONS]
        assert {s.seed for s in sections if hasattr(s, "seed")} == {profile.seed}
        assert {s.profile for s in sections if hasattr(s, "profile")} == {name}
        assert profile.lm.start_from_shipped == profile.frame.start_from_shipped == profile.start_from_shipped
    assert PROFILES["demo"].start_from_shipped and not PROFILES["standard"].separation.start_from_shipped
    assert PROFILES["demo"].replace(seed=7).lm.seed == 7


def test_tatum_and_trimming_sizes_follow_the_frame_section_unless_set():
    from adt.config import PROFILES

    tiny, demo = PROFILES["tiny"], PROFILES["demo"]
    # tatum: epochs x steps per epoch, validated every epoch, half the batch; trimming: the frame batch
    assert (tiny.tatum.steps, tiny.tatum.eval_every, tiny.tatum.batch_size, tiny.trimming.batch_size) == (8, 4, 2, 4)
    assert (demo.tatum.steps, demo.tatum.eval_every, demo.tatum.batch_size) == (96, 36, 8)  # steps set: 96
    longer = demo.replace(frame={"epochs": 8, "batch_size": 32})
    assert (longer.tatum.steps, longer.tatum.batch_size, longer.trimming.batch_size) == (96, 16, 32)
    assert tiny.replace(frame={"epochs": 3}).tatum.steps == 12
    assert tiny.replace(frame={"epochs": 3}, tatum={"steps": 5}).tatum.steps == 5
    with pytest.raises(TypeError):
        demo.replace(frame={"epoch": 3})
