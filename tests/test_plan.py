"""make demo materializes only what is stale or missing (pipelines.plan): Dagster's code and data versions,
the run's settings, a stored value deleted by hand; and its console is one line per step (pipelines.console)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import soundfile as sf

from pipelines.console import StepLines, adt_console, logged_by, progress_bar
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


def test_console_leaves_out_dagsters_missing_partition_warnings_by_who_logs_them(mdb_track, tmp_path, capsys):
    """The warning Dagster's UPathIOManager logs for a partition an ``allow_missing_partitions`` input skips stays in
    the event log; a warning of the same text logged by an asset, and a library's warning, still show: the console
    tells them apart by the code that logged them, not by their text."""
    import logging

    skipped = ("Couldn't load partition mdb and skipped it because the input metadata includes "
               "allow_missing_partitions=True")

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["demo", "mdb"]))
    def seconds() -> float:
        return sf.info(str(mdb_track["wav"])).duration

    @dg.asset(ins={"seconds": dg.AssetIn(metadata={"allow_missing_partitions": True})})
    def total(context, seconds: dict) -> float:
        context.log.warning(skipped.replace("mdb", "other"))  # the asset's own words: shown
        logging.getLogger("adt.data.download").warning("mirror folder has no kit.deb; downloading it")
        return sum(seconds.values())

    overrides = {"python_logs": {"managed_python_loggers": ["adt"]}}
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        defs = dg.Definitions(assets=[seconds, total], loggers={"adt_console": adt_console},
                              resources={"io_manager": JsonIOManager()})
        job = defs.resolve_implicit_global_asset_job_def()
        job.execute_in_process(instance=instance, partition_key="demo", asset_selection=[seconds.key],
                               run_config={"loggers": {"adt_console": {}}})
        result = job.execute_in_process(instance=instance, asset_selection=[total.key],
                                        run_config={"loggers": {"adt_console": {}}})
        logged = [e.message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert skipped in logged  # Dagster's warning, in the event log
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == [f"  total: warning: {skipped.replace('mdb', 'other')}",
                          "  total: warning: mirror folder has no kit.deb; downloading it",
                          lines[-1]] and lines[-1].split()[:2] == ["total", "done"]
    assert not any("partition mdb" in line for line in lines)


def test_console_filters_by_the_logging_module_and_level_only():
    """The same record is left out when UPathIOManager's own module logs it as a warning, and shown when any
    other code logs it, or when that module logs it as an error."""
    import io
    import logging

    def emitted(level: int, module: str) -> str:
        stream = io.StringIO()
        handler = StepLines(stream)
        record = logging.LogRecord("adt_console", level, __file__, 1, "partition gone", None, None)
        record.dagster_meta = {"dagster_event": None, "step_key": "total", "orig_message": "partition gone"}
        exec("handler.emit(record)", {"__name__": module, "handler": handler, "record": record})
        return stream.getvalue()

    assert emitted(logging.WARNING, dg.UPathIOManager.__module__) == ""
    assert emitted(logging.WARNING, "pipelines.assets") == "  total: warning: partition gone\n"
    assert emitted(logging.ERROR, dg.UPathIOManager.__module__) == "  total: error: partition gone\n"
    assert logged_by() == __name__
