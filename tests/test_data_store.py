"""The data folder through an artifact store (:mod:`adt.data_store`), with a ``file://`` store: a folder's files
pushed, then pulled into an empty folder at the same path (the first one moved away) with the same bytes; only the
stages asked for; what stays local never travels; a local change is never overwritten; a removal travels. A tampered
object, a broken index file, a folder at another path and a command without ``ADT_DATA_STORE`` are refused, named.
The real MDB recording and annotation are the files. The MLflow tracking server's proxied store and the Dagster
steps are checked by tests/test_distributed_celery.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adt.data_store import LOCAL_ONLY, DataStore, StoreMismatch, stage_of

ROOT = Path(__file__).resolve().parents[1]


def _layout(data: Path, mdb_track: dict) -> None:
    """A data folder as the stages leave it: audio (dataset_tables), a table folder (tracks) with its
    ``.digests`` record, a symlink, and what stays on this machine."""
    (data / "audio" / "mdb").mkdir(parents=True)
    shutil.copy(mdb_track["wav"], data / "audio" / "mdb" / "drums.wav")
    (data / "tables" / "k1").mkdir(parents=True)
    shutil.copy(mdb_track["annotation"], data / "tables" / "k1" / "onsets.txt")
    (data / "tables" / "k1" / "latest").symlink_to("onsets.txt")
    (data / ".digests" / "audio" / "mdb").mkdir(parents=True)
    (data / ".digests" / "audio" / "mdb" / "drums.wav.json").write_text('{"bytes": 1}')
    (data / "dagster").mkdir()
    (data / "dagster" / "runs.db").write_text("local")
    (data / "mlflow.db").write_text("local")
    (data / "optuna.db").write_text("local")  # a SQLite store anywhere stays
    (data / "lm_gru" / "k").mkdir(parents=True)
    (data / "lm_gru" / "k" / "study.db-journal").write_text("local")
    (data / "tables" / "k1" / ".tmp-onsets.txt-1-x").write_text("half")
    (data / "tables" / ".tmp-k2-1-x").mkdir()  # a folder being written (adt.atomic.atomic_dir)
    (data / "tables" / ".tmp-k2-1-x" / "onsets.txt").write_text("half")


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Relative path -> bytes (or "-> target" of a link) of the folder's files but its own record ``.store``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel.startswith(".store"):
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def test_push_then_pull_into_an_empty_folder(tmp_path, mdb_track):
    data, store = tmp_path / "data", f"file://{tmp_path / 'store'}"
    _layout(data, mdb_track)
    pushed = DataStore(store, data).push(log=lambda m: None)
    assert pushed.files == 4 and pushed.bytes > mdb_track["wav"].stat().st_size  # 3 files and a link
    assert DataStore(store, data).push(log=lambda m: None).files == 0  # nothing changed: nothing sent
    wanted = {k: v for k, v in _tree(data).items()
              if k.split("/")[0] not in LOCAL_ONLY and ".tmp-" not in k and ".db" not in k}

    gone = data.rename(tmp_path / "data.gone")  # the machine that computed them is gone
    data.mkdir()
    only_tables = DataStore(store, data).pull(["tracks"], log=lambda m: None)
    assert only_tables.files == 2 and sorted(_tree(data)) == ["tables/k1/latest", "tables/k1/onsets.txt"]
    assert DataStore(store, data).pull(log=lambda m: None).files == 2  # the rest (the audio and its record)
    assert _tree(data) == wanted and _tree(data)["tables/k1/latest"] == "-> onsets.txt"
    assert DataStore(store, data).pull(log=lambda m: None).files == 0
    assert not (data / "dagster").exists() and not (data / "mlflow.db").exists() and not (data / "optuna.db").exists()

    # a change here travels back; the other folder gets only that file
    (data / "tables" / "k1" / "onsets.txt").write_text("0.5\tKD\n")
    assert DataStore(store, data).push(log=lambda m: None).files == 1
    shutil.rmtree(data)
    gone.rename(data)
    wav = data / "audio" / "mdb" / "drums.wav"
    wav.write_bytes(wav.read_bytes()[:-4])  # changed here, not pushed yet (a step writing it): never overwritten
    again = DataStore(store, data).pull(log=lambda m: None)
    assert again.files == 1 and (data / "tables" / "k1" / "onsets.txt").read_text() == "0.5\tKD\n"
    assert wav.stat().st_size == mdb_track["wav"].stat().st_size - 4

    # a file removed here (a step's transient file) is removed where it is unchanged, and never brought back
    twins = [tmp_path / "twin-a", tmp_path / "twin-b"]  # copies that synced it
    for twin in twins:
        shutil.copytree(data, twin, symlinks=True)
    (twins[1] / "tables" / "k1" / "onsets.txt").write_text("0.75\tSD\n")  # re-written there since
    (data / "tables" / "k1" / "onsets.txt").unlink()
    assert DataStore(store, data).push(log=lambda m: None).files == 2  # the removal, and the changed audio
    for twin, kept in zip(twins, (False, True)):
        shutil.rmtree(data)
        twin.rename(data)
        DataStore(store, data).pull(log=lambda m: None)
        assert (data / "tables" / "k1" / "onsets.txt").exists() == kept
    shutil.rmtree(data)
    data.mkdir()
    DataStore(store, data).pull(log=lambda m: None)
    assert not (data / "tables" / "k1" / "onsets.txt").exists() and (data / "tables" / "k1" / "latest").is_symlink()


def test_stage_of_folders_and_records():
    assert [stage_of(p) for p in ("tables/k/a.parquet", ".digests/audio/x.json", "raw/demo/k/a.wav",
                                  "mlflow-logged/k/manifest.json")] == ["tracks", "dataset_tables", "raw_dataset", None]


def test_refusals_name_the_store_and_the_file(tmp_path, mdb_track):
    data, store = tmp_path / "data", f"file://{tmp_path / 'store'}"
    _layout(data, mdb_track)
    DataStore(store, data).push(log=lambda m: None)
    with pytest.raises(StoreMismatch, match=f"holds the data folder {data}, this one is {tmp_path / 'other'}"):
        DataStore(store, tmp_path / "other").pull()

    objects = list((tmp_path / "store" / "objects").rglob("*"))
    for obj in (o for o in objects if o.is_file() and o.stat().st_size == mdb_track["wav"].stat().st_size):
        obj.write_bytes(b"\0" * obj.stat().st_size)  # same size, other bytes
    shutil.rmtree(data)
    data.mkdir()
    with pytest.raises(OSError, match="the object of audio/mdb/drums.wav is not what was pushed"):
        DataStore(store, data).pull(log=lambda m: None)
    assert not (data / "audio" / "mdb" / "drums.wav").exists()  # nothing half-trusted left

    index = next((tmp_path / "store" / "index").iterdir())
    index.write_text(index.read_text()[:20])  # cut short (as if still being uploaded), and never completed
    shutil.rmtree(data)
    data.mkdir()
    with pytest.raises(OSError, match=f"index/{index.name} is not an index file"):
        DataStore(store, data).pull(log=lambda m: None)

    env = {**os.environ, "ADT_DATA_DIR": str(tmp_path / "other"), "ADT_DATA_STORE": store,
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    cli = subprocess.run([sys.executable, "-m", "adt.data_store", "status"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 1 and "every machine must use the same path" in cli.stderr, cli.stderr[-2000:]
    env.pop("ADT_DATA_STORE")
    cli = subprocess.run([sys.executable, "-m", "adt.data_store", "pull"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 2 and "ADT_DATA_STORE is not set" in cli.stderr


def test_the_resource_pulls_a_stage_alone_or_with_its_upstream(tmp_path, mdb_track, monkeypatch):
    """``DataStoreResource.pull``: a check's pull of one stage fetches that stage's folders alone; a step's pull
    fetches its upstream stages' too (``tracks`` reads the audio ``dataset_tables`` rendered)."""
    from pipelines.resources import DataStoreResource

    data, store = tmp_path / "data", f"file://{tmp_path / 'store'}"
    _layout(data, mdb_track)
    DataStore(store, data).push(log=lambda m: None)
    shutil.rmtree(data)
    data.mkdir()
    monkeypatch.setenv("ADT_DATA_DIR", str(data))
    resource = DataStoreResource(uri=store)
    resource.pull("tracks", lambda m: None, upstream=False)
    assert sorted(_tree(data)) == ["tables/k1/latest", "tables/k1/onsets.txt"]
    resource.pull("tracks", lambda m: None)
    assert (data / "audio" / "mdb" / "drums.wav").read_bytes() == mdb_track["wav"].read_bytes()
