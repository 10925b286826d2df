"""The weekly retraining schedule and the new-archive sensor (pipelines/automation.py)."""

from __future__ import annotations

import os
import shutil
import time

import dagster as dg
import pytest

from pipelines import automation


@pytest.fixture
def data(tmp_path, monkeypatch):
    """An empty data folder (with downloads/) and no mirror."""
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ADT_DATA_MIRROR", raising=False)
    (tmp_path / "data" / "downloads").mkdir(parents=True)
    return tmp_path / "data"


def _tick(cursor):
    """Evaluate the sensor once as the daemon would; returns (run requests, new cursor)."""
    context = dg.build_sensor_context(cursor=cursor)
    result = automation.new_archive_sensor(context)
    requests = result if isinstance(result, list) else []
    return requests, context.cursor


def _place(src, dst, age_s=120.0):
    """Copy an archive and date it ``age_s`` seconds back (past the settle time)."""
    shutil.copyfile(src, dst)
    then = time.time() - age_s
    os.utime(dst, (then, then))


def test_groove_archive_triggers_one_run(data, shared_datasets):
    requests, cursor = _tick(None)
    assert requests == []
    requests, cursor = _tick(cursor)
    assert requests == []

    _place(shared_datasets / "groove-v1.0.0-midionly.zip", data / "downloads" / "groove-v1.0.0-midionly.zip")
    requests, cursor = _tick(cursor)
    assert len(requests) == 1
    assert requests[0].partition_key == "groove"
    first_key = requests[0].run_key
    assert first_key.startswith("groove-v1.0.0-midionly.zip:")

    requests, cursor = _tick(cursor)  # the same file again: the cursor remembers it
    assert requests == []

    # a changed archive (new mtime) triggers again, with a new run key
    path = data / "downloads" / "groove-v1.0.0-midionly.zip"
    os.utime(path, (time.time() - 60, time.time() - 60))
    again, _ = _tick(cursor)
    assert len(again) == 1 and again[0].partition_key == "groove" and again[0].run_key != first_key


def test_unrelated_and_unsettled_files_wait(data, shared_datasets):
    _, cursor = _tick(None)
    (data / "downloads" / "notes.zip").write_bytes(b"not a dataset archive")
    assert _tick(cursor)[0] == []
    # an archive still being written (just modified) waits for the next ticks
    archives = ("mdb-drums-subset.zip", "mdb-drums-multitracks.zip")  # every remote of mdb
    for name in archives:
        shutil.copyfile(shared_datasets / name, data / "downloads" / name)
    requests, cursor = _tick(cursor)
    assert requests == []
    now = time.time() - 2 * automation.SETTLE_S
    for name in archives:
        os.utime(data / "downloads" / name, (now, now))
    requests, _ = _tick(cursor)
    assert [r.partition_key for r in requests] == ["mdb"]


def test_mirror_folder_is_watched_and_ingested_archives_skipped(data, shared_datasets, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("ADT_DATA_MIRROR", str(mirror))
    _, cursor = _tick(None)
    _place(shared_datasets / "groove-v1.0.0-midionly.zip", mirror / "groove-v1.0.0-midionly.zip")
    # raw_dataset[groove] already ran after this archive was written: nothing to do
    pointer = data / "raw" / "groove" / "current.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("{}")
    assert _tick(cursor)[0] == []
    pointer.unlink()
    _place(shared_datasets / "groove-v1.0.0-midionly.zip", mirror / "groove-v1.0.0-midionly.zip", age_s=90)
    requests, _ = _tick(cursor)
    assert [r.partition_key for r in requests] == ["groove"]


def test_files_present_at_the_first_tick_are_a_baseline(data, shared_datasets):
    _place(shared_datasets / "groove-v1.0.0-midionly.zip", data / "downloads" / "groove-v1.0.0-midionly.zip")
    requests, cursor = _tick(None)
    assert requests == [] and "groove-v1.0.0-midionly.zip" in cursor


def test_schedule_and_sensor_defaults():
    schedule = automation.weekly_retraining
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.job_name == "adt_training"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    sensor = automation.new_archive_sensor
    assert sensor.job_name == "adt_raw_datasets"
    assert sensor.minimum_interval_seconds == 60
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert automation.SCHEDULES == [schedule] and automation.SENSORS == [sensor, automation.dead_run_sensor]
    assert automation.dead_run_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_definitions_load_with_schedule_and_sensor():
    """The lists wire into the code location's jobs (as pipelines/definitions.py should)."""
    from pipelines import definitions as d

    defs = dg.Definitions(assets=d.ALL_ASSETS, asset_checks=d.ALL_CHECKS,
                          jobs=[d.raw_job, d.downstream_job, d.training_job],
                          schedules=automation.SCHEDULES, sensors=automation.SENSORS,
                          resources={"settings": d.AdtSettings(), "data_store": d.DataStoreResource()})
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert repo.get_schedule_def("adt_weekly_retraining").job_name == "adt_training"
    assert repo.get_sensor_def("adt_new_archive_sensor").job_name == "adt_raw_datasets"


@pytest.mark.faults
def test_a_run_whose_process_was_killed_is_marked_failed(tmp_path, monkeypatch):
    """kill -9 inside a run leaves it STARTED; fail_dead_runs (the sensor, make demo) marks it failed."""
    import os
    import subprocess
    import sys
    import textwrap

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    script = textwrap.dedent("""
        import os
        import dagster as dg

        @dg.asset
        def doomed():
            os.kill(os.getpid(), 9)

        dg.materialize([doomed], instance=dg.DagsterInstance.get())
    """)
    done = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9
    instance = dg.DagsterInstance.get()
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.STARTED  # what the kill leaves
    assert automation.fail_dead_runs(instance) == [run.run_id]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert automation.fail_dead_runs(instance) == []


def test_a_run_launched_without_make_demo_is_tagged_with_its_settings(data, tmp_path):
    """A run from the UI, a schedule or a sensor carries no tags of make demo's: the AdtSettings resource tags it
    with the fingerprint of the settings it ran with, the one make demo computes for the same profile, so the two
    agree on what is stale (issue 31)."""
    from adt.config import Settings
    from pipelines.plan import SETTINGS_TAG, settings_fingerprint
    from pipelines.resources import AdtSettings

    @dg.asset(required_resource_keys={"settings"})
    def reads_settings(context) -> str:
        return context.resources.settings.get_profile().name

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([reads_settings], resources={"settings": AdtSettings(profile="tiny")}, instance=instance)
    assert result.success
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags[SETTINGS_TAG] == settings_fingerprint(Settings.from_env(profile="tiny"))
    assert tags[SETTINGS_TAG] != settings_fingerprint(Settings.from_env(profile="demo"))
