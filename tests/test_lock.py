"""One writer per data folder (adt.lock): a second writer fails at once naming the holder; the lock is
re-entrant in its process and gone with a killed holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from adt import lock


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def hold_in_another_process(folder):
    script = textwrap.dedent("""
        import sys, time
        from adt.lock import acquire
        acquire("make demo")
        print("held", flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.faults
def test_a_second_writer_is_refused_naming_the_holder_until_it_dies(folder):
    proc = hold_in_another_process(folder)
    try:
        with pytest.raises(lock.DataFolderBusy, match=rf"pid {proc.pid} .*make demo"):
            lock.acquire("a second make demo")
        with pytest.raises(dg.Failure, match=f"pid {proc.pid}"):  # a Dagster run on the same folder
            from pipelines.resources import AdtSettings

            AdtSettings().setup_for_execution(dg.build_init_resource_context())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with lock.data_lock("after the kill -9"):  # the kernel dropped the dead holder's lock
        assert lock.holder(folder)["pid"] == os.getpid()
        with lock.data_lock("re-entrant: the assets inside make demo's own process"):
            pass
        assert lock.holder(folder)["what"] == "after the kill -9"
    assert lock.holder(folder) == {}


@pytest.mark.faults
def test_run_all_fails_with_the_holder_named(folder, capsys, monkeypatch):
    from pipelines.materialize import main

    monkeypatch.setenv("ADT_PROFILE", "tiny")  # main sets it; restored after the test

    proc = hold_in_another_process(folder)
    try:
        assert main(["--profile", "tiny"]) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert f"pid {proc.pid}" in capsys.readouterr().err


@pytest.mark.faults
def test_a_step_process_of_the_holder_shares_its_lock(folder):
    """Dagster's multiprocess executor runs each step in a child of the run's process: the child shares the
    lock (and leaves it and its holder file to the parent); an unrelated process is still refused."""
    script = textwrap.dedent("""
        from adt.lock import acquire, holder, release
        path = acquire("a step of the run")
        release(path)
        print(holder()["what"])
    """)
    with lock.data_lock("make demo"):
        child = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True,
                               timeout=120)
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "make demo"  # still the parent's
        assert lock.holder(folder)["pid"] == os.getpid()
    proc = hold_in_another_process(folder)
    try:
        with pytest.raises(lock.DataFolderBusy):
            lock.acquire("not its child")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
