"""Atomic writes (adt.atomic): complete files only, with the permissions the umask gives."""

from __future__ import annotations

import os
import stat

import pytest

from adt.atomic import atomic_dir, atomic_path, write_json
from adt.audio import read_audio, write_audio


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_outputs_get_the_umask_permissions(tmp_path, mdb_track, umask):
    """A shared server's group can read (or write, umask 002) what the pipeline writes: MIDI,
    audio, JSON and cache folders are not owner-only as mkstemp/mkdtemp would leave them."""
    old = os.umask(umask)
    try:
        audio, sr = read_audio(mdb_track["wav"])
        wav = write_audio(tmp_path / "drums.wav", audio[:, : sr], sr)
        meta = write_json(tmp_path / "render.json", {"kit": "h2:GMRockKit"})
        with atomic_path(tmp_path / "out.mid") as tmp:
            tmp.write_bytes(b"MThd")
        with atomic_dir(tmp_path / "cache") as folder:
            (folder / "x").write_text("1")
    finally:
        os.umask(old)
    for path in (wav, meta, tmp_path / "out.mid"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o777 & ~umask
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.faults
def test_leftovers_of_a_dead_process_are_removed(tmp_path, mdb_track):
    """A crashed extraction's ``.tmp-<name>-<pid>-*`` folder (its process gone) is removed by the
    next write of that name; a live process's temporary file is left alone."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    crashed = tmp_path / f".tmp-mdb-{dead}-abc123"
    (crashed / "audio").mkdir(parents=True)
    (crashed / "audio" / "drums.wav").write_bytes(mdb_track["wav"].read_bytes())
    live = tmp_path / f".tmp-mdb-{os.getppid()}-xyz789"
    live.mkdir()
    with atomic_dir(tmp_path / "mdb") as folder:
        (folder / "ok").write_text("1")
    assert not crashed.exists() and live.exists() and (tmp_path / "mdb" / "ok").is_file()
    others = [tmp_path / f".tmp-mdb.zip-{dead}-q1w2e3.zip", tmp_path / f".tmp-mdb-2-{dead}-q1w2e3"]
    for other in others:  # other names' leftovers ("mdb.zip", "mdb-2"): not this write's business
        other.write_bytes(b"x")
    with atomic_path(tmp_path / "mdb.json") as tmp:
        tmp.write_text("{}")
    with atomic_dir(tmp_path / "mdb") as folder:
        (folder / "ok").write_text("2")
    assert all(other.exists() for other in others)
