"""Issue 29 item 7, the smaller integrity and experience faults: a dead run's reused pid, public server
examples, ``adt separate``'s order of checks, ``adt transcribe`` with a missing MLflow store, and
``make demo``'s dataset line."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]


# (a) dead-run detection: pid and start, and runs that never logged a pid

@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A Dagster instance of its own and an empty data folder (its lock free)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.get() as inst:
        yield inst


def started_run(instance, pid: int | None = None, tags: dict | None = None) -> str:
    """A run left ``STARTED``; with ``pid``, the executor's event naming its process, as Dagster writes it."""
    from dagster._core.events import EngineEventData

    run = instance.add_run(dg.DagsterRun(job_name="adt_training", status=dg.DagsterRunStatus.STARTED,
                                         tags=tags or {}))
    if pid is not None:
        instance.report_engine_event(f"Executing steps in process (pid: {pid})", run,
                                     EngineEventData.in_process(pid))
    return run.run_id


def status(instance, run_id: str):
    return instance.get_run_by_id(run_id).status


@pytest.mark.faults
def test_a_run_whose_pid_was_reused_is_marked_failed(instance):
    """The pid recorded for the run is alive (this test's process) but started at another time: another
    process got the pid after the run's died."""
    from pipelines import automation

    reused = started_run(instance, os.getpid(), {automation.PID_TAG: str(os.getpid()),
                                                 automation.PROCESS_START_TAG: "some-boot:12345"})
    assert automation.fail_dead_runs(instance) == [reused]
    assert status(instance, reused) == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(reused, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    assert "is now another process" in failure.event_log_entry.dagster_event.message


@pytest.mark.faults
def test_a_live_run_is_left_alone(instance):
    """This process, tagged as the AdtSettings resource tags a run (its pid and real start): alive. And a run
    from before the tags, whose pid was logged after this process started: alive too."""
    from pipelines import automation

    tagged = started_run(instance, os.getpid())
    automation.record_run_process(instance, tagged)
    assert instance.get_run_by_id(tagged).tags[automation.PID_TAG] == str(os.getpid())
    untagged = started_run(instance, os.getpid())
    assert automation.fail_dead_runs(instance, now=time.time() + 10 * automation.NO_PID_GRACE_S) == []
    assert status(instance, tagged) == status(instance, untagged) == dg.DagsterRunStatus.STARTED


@pytest.mark.faults
def test_a_run_without_a_pid_is_failed_after_the_grace_period_when_no_one_holds_the_lock(instance):
    """Killed between STARTED and the executor's pid event: left alone while it may still be starting
    (the grace period) or while a live process holds the data folder's lock, failed after that."""
    import subprocess
    import sys
    import textwrap

    from pipelines import automation

    silent = started_run(instance)
    assert automation.fail_dead_runs(instance) == []  # just started
    later = time.time() + automation.NO_PID_GRACE_S + 1
    script = textwrap.dedent("""
        import time
        from adt.lock import acquire
        acquire("make demo")
        print("held", flush=True)
        time.sleep(300)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], env=os.environ, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert automation.fail_dead_runs(instance, now=later) == []  # a live writer: maybe that run
    finally:
        holder.kill()
        holder.wait()
    # the holder file outlives a killed holder; its process is gone, so the lock is free
    assert automation.fail_dead_runs(instance, now=later) == [silent]
    assert status(instance, silent) == dg.DagsterRunStatus.FAILURE


@pytest.mark.faults
def test_process_start_tells_a_process_from_a_later_one_with_its_pid():
    import subprocess
    import sys

    from adt.atomic import process_start, process_started_at, same_process

    me = process_start(os.getpid())
    assert me is not None and me == process_start(os.getpid())
    assert same_process(os.getpid(), me) and same_process(os.getpid(), None)
    assert not same_process(os.getpid(), me.rsplit(":", 1)[0] + ":1")
    assert abs(process_started_at(os.getpid()) - time.time()) < 24 * 3600
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert not same_process(int(gone), me)  # gone (or, reused, another start)


# (b) public server examples say what guards them

#: Words that count as the note on authentication next to a public bind.
AUTH_NOTE = re.compile(r"basic-auth|reverse proxy", re.IGNORECASE)
PUBLIC_BIND = re.compile(r"(--host|-h)[ =]0\.0\.0\.0")


@pytest.mark.faults
def test_every_public_server_example_says_how_to_guard_it():
    """README, docs/ and deploy/ bind servers to 127.0.0.1, or say within a few lines (the same paragraph)
    what to put in front of a public bind (MLflow's basic-auth app, or a reverse proxy with TLS and auth)."""
    files = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").rglob("*")),
             *sorted((ROOT / "deploy").rglob("*"))]
    unguarded = []
    for path in (p for p in files if p.is_file()):
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if PUBLIC_BIND.search(line) and not AUTH_NOTE.search("\n".join(lines[max(0, i - 3): i + 9])):
                unguarded.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert not unguarded, "a public bind without a word on authentication:\n" + "\n".join(unguarded)


# (c) adt separate: inputs first, and no data folder made by running

def short_audio(path: Path, seconds: float = 1.0) -> Path:
    """A short stereo recording of clicks over noise (44.1 kHz)."""
    import numpy as np

    from adt.audio import write_audio

    sr = 44100
    rng = np.random.default_rng(0)
    audio = 0.01 * rng.standard_normal((2, int(seconds * sr))).astype("float32")
    audio[:, :: sr // 4] = 0.9  # a click every 250 ms
    return write_audio(path, audio, sr)


@pytest.fixture
def empty_workdir(tmp_path, monkeypatch):
    """An empty working folder with no ADT_DATA_DIR: the default data folder would be ``./data`` there."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("ADT_DATA_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return work


@pytest.mark.faults
def test_separate_names_a_missing_input_before_looking_for_a_separator(empty_workdir, capsys):
    from adt.cli import main

    assert main(["separate", "nope.wav", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "nope.wav: no such audio file" in err and "no separator" not in err
    assert not (empty_workdir / "data").exists() and not (empty_workdir / "out").exists()


@pytest.mark.faults
def test_separate_makes_no_data_folder_and_skips_a_missing_input(empty_workdir, capsys):
    """One missing input of two: named and skipped (status 2), the other separated with the shipped
    separator; only the output folder is made."""
    from adt.cli import main

    song = short_audio(empty_workdir / "song.wav")
    assert main(["separate", "nope.wav", str(song), "-o", "out", "--sources", "drums"]) == 2
    err = capsys.readouterr().err
    assert "nope.wav: no such audio file" in err and "separator:" in err
    assert (empty_workdir / "out" / "song" / "drums.wav").is_file()
    assert sorted(p.name for p in empty_workdir.iterdir()) == ["out", "song.wav"]


# (d) adt transcribe with an MLflow store that does not exist: not created

@pytest.mark.faults
def test_transcribe_does_not_create_a_missing_mlflow_store(empty_workdir, tmp_path, monkeypatch, capsys):
    from adt.cli import main

    store = tmp_path / "x" / "nope.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    song = short_audio(empty_workdir / "song.wav", seconds=2.0)
    assert main(["transcribe", str(song), "-o", "song.mid"]) == 0
    err = capsys.readouterr().err
    assert "the shipped model" in err and f"no such database file {store}" in err
    assert not store.exists() and not store.parent.exists()
    assert sorted(p.name for p in empty_workdir.iterdir()) == ["song.mid", "song.wav"]  # no ./data, no mlruns


@pytest.mark.faults
def test_a_registry_uri_with_a_missing_store_is_an_error_not_a_new_store(tmp_path, monkeypatch):
    from adt.transcribe.models import NoModelError, load_transcriber, missing_store

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(NoModelError, match="no such database file"):
        load_transcriber("models:/adt-frame-crnn/1")
    _, what = load_transcriber("lite")  # no registry: the lite transcriber shipped with adt, and why
    assert "frame_crnn_lite.pt (the shipped lite model: " in what and f"no such database file {tmp_path}" in what
    assert not (tmp_path / "nope.db").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path / 'mlruns'}")
    assert "no such file store" in missing_store()
    (tmp_path / "mlruns").mkdir()
    assert missing_store() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg2://adt:pw@db:5432/mlflow")
    assert missing_store() is None  # a server: cannot be told from here, asked when used


# (e) make demo's dataset line

@pytest.mark.faults
def test_chosen_datasets_are_not_called_unreachable():
    from pipelines.materialize import dataset_lines

    datasets, lines = dataset_lines("tiny", ["groove"], ["groove"])
    assert datasets == ["groove"]
    assert lines == ["profile tiny; datasets: groove (chosen with --datasets)"]
    datasets, lines = dataset_lines("tiny", ["demo", "mdb", "demo"], ["demo"])
    assert datasets == ["demo", "mdb"]
    assert "not reachable" not in lines[0] and lines[1].startswith("warning: mdb: ")
    with pytest.raises(RuntimeError, match="no dataset grove"):
        dataset_lines("tiny", ["grove"], [])


@pytest.mark.faults
def test_without_a_choice_the_unavailable_datasets_are_named():
    from adt.data.datasets import DATASETS
    from pipelines.materialize import dataset_lines

    datasets, [line] = dataset_lines("tiny", None, ["demo", "mdb"])
    assert datasets == ["demo", "mdb"]
    others = [d for d in DATASETS if d not in ("demo", "mdb")]
    assert line.startswith("profile tiny; datasets: demo, mdb (not reachable: " + ", ".join(others))
    assert dataset_lines("tiny", None, list(DATASETS))[1] == [f"profile tiny; datasets: {', '.join(DATASETS)}"]
