"""make demo materializes only what is stale or missing (pipelines.plan): Dagster's code and data versions,
the run's settings, a stored value deleted by hand; and its console is one line per step (pipelines.console)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import soundfile as sf

from pipelines.console import StepLines, adt_console, progress_bar
from pipelines.io_manager import JsonIOManager, stored_value_path
from pipelines.plan import SETTINGS_TAG, to_materialize


def graph(wav: Path, version: str = "1") -> dg.Definitions:
    """Two assets over a real MDB recording: its duration, then in minutes."""

    @dg.asset(code_version=version)
    def duration() -> dg.Output[float]:
        seconds = sf.info(str(wav)).duration
        return dg.Output(seconds, data_version=dg.DataVersion(f"{seconds:.3f}"))

    @dg.asset(code_version="1")
    def minutes(duration: float) -> float:
        return duration / 60

    return dg.Definitions(assets=[duration, minutes], loggers={"adt_console": adt_console},
                          resources={"io_manager": JsonIOManager()})


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def run(defs: dg.Definitions, instance, fingerprint: str, keys=None):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, tags={SETTINGS_TAG: fingerprint}, asset_selection=keys,
                                  run_config={"loggers": {"adt_console": {}}})


def test_only_stale_or_missing_assets_are_planned(mdb_track, instance):
    defs = graph(mdb_track["wav"])
    keys = [dg.AssetKey("duration"), dg.AssetKey("minutes")]
    assert to_materialize(instance, defs, keys, "a") == {k: "missing" for k in keys}
    result = run(defs, instance, "a")
    assert abs(result.output_for_node("minutes") - sf.info(str(mdb_track["wav"])).duration / 60) < 1e-9
    assert to_materialize(instance, defs, keys, "a") == {}  # nothing changed: a no-op
    # another profile or setting: every value was made under other settings
    assert to_materialize(instance, defs, keys, "b") == {k: "settings changed" for k in keys}
    # a new code version: Dagster's own staleness, the downstream asset with it
    changed = to_materialize(instance, graph(mdb_track["wav"], "2"), keys, "a")
    assert changed[dg.AssetKey("duration")].startswith("stale") and "code version" in changed[dg.AssetKey("duration")]
    assert changed[dg.AssetKey("minutes")] == "downstream of duration"
    # a stored value deleted by hand
    stored_value_path(instance.storage_directory(), dg.AssetKey("minutes")).unlink()
    assert to_materialize(instance, defs, keys, "a") == {dg.AssetKey("minutes"): "stored value gone"}
    run(defs, instance, "a", [dg.AssetKey("minutes")])
    assert to_materialize(instance, defs, keys, "a") == {}


def test_console_prints_one_line_per_step(mdb_track, instance, capsys):
    run(graph(mdb_track["wav"]), instance, "a")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["duration", "done"], ["minutes", "done"]]
    assert not any("DEBUG" in line or "STEP_START" in line for line in lines)


def test_console_lines_in_a_log_and_warnings(capsys):
    import io
    import logging

    stream = io.StringIO()
    handler = StepLines(stream)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "3 tracks skipped", None, None)
    record.dagster_meta = {"dagster_event": None, "step_key": "beats", "orig_message": "3 tracks skipped"}
    handler.emit(record)
    info = logging.LogRecord("x", logging.INFO, __file__, 1, "rendered 12/48", None, None)
    info.dagster_meta = {"dagster_event": None, "step_key": "beats", "orig_message": "rendered 12/48"}
    handler.emit(info)  # not a terminal: progress is not written
    assert stream.getvalue() == "  beats: warning: 3 tracks skipped\n"


def test_progress_bar():
    assert progress_bar("rendered 12/48 tracks") == "[#####---------------] 12/48"
    assert progress_bar("epoch 3: loss 0.2") == ""
    assert progress_bar("round 2/2") == "[####################] 2/2"


def test_library_warnings_reach_the_console_as_lines(mdb_track, tmp_path, capsys):
    """dagster.yaml hands the ``adt`` Python logger to Dagster: a library warning is one console line (and in
    the run's event log), not text written across the step's live line."""
    import logging

    import yaml

    @dg.asset
    def offline() -> float:
        logging.getLogger("adt.data.download").warning("mirror folder has no kit.deb; downloading it")
        return sf.info(str(mdb_track["wav"])).duration

    overrides = {"python_logs": yaml.safe_load(open(Path(__file__).parents[1] / "dagster.yaml"))["python_logs"]}
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        defs = dg.Definitions(assets=[offline], loggers={"adt_console": adt_console})
        run(defs, instance, "a")
        logged = [e for e in instance.all_logs(instance.get_runs()[0].run_id) if "downloading it" in (e.message or "")]
    assert logged  # in the event log
    assert "  offline: warning: mirror folder has no kit.deb; downloading it" in capsys.readouterr().out.splitlines()
