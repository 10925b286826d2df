"""Issue 29: nothing corrupt is ever trusted. The shipped weights are checked against the SHA-256 kept in code
(:mod:`adt.pretrained`), cached stage outputs against the content hashes in their manifests (:mod:`adt.cache`)."""

from __future__ import annotations

import re
import shutil

import pytest

import adt.frame.shipped
import adt.pretrained
from adt.cli import main


@pytest.mark.parametrize("name", sorted(adt.pretrained.SHA256))
def test_the_card_repeats_the_digest_kept_in_code(name):
    card = (adt.pretrained.DIR / name).with_suffix(".md")
    if not card.is_file():  # gru_lm_groove_k3.pt: in gru_lm_groove.md
        card = adt.pretrained.DIR / "gru_lm_groove.md"
    stated = re.search(rf"SHA-256\*\* of `{re.escape(name)}`: `([0-9a-f]{{64}})`", card.read_text()).group(1)
    assert stated == adt.pretrained.SHA256[name]
    assert adt.pretrained.verify(adt.pretrained.DIR / name) == adt.pretrained.DIR / name  # the file itself agrees
    assert sorted(p.name for p in adt.pretrained.DIR.glob("*.pt")) == sorted(adt.pretrained.SHA256)


def _flipped_copy(tmp_path, monkeypatch, name: str):
    """A copy of the shipped folder where ``name`` has 256 bytes flipped in the middle (in a weight tensor),
    made the shipped folder for this test."""
    folder = tmp_path / "pretrained"
    shutil.copytree(adt.pretrained.DIR, folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    data = bytearray((folder / name).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 256] = bytes(b ^ 0xFF for b in data[middle:middle + 256])
    (folder / name).write_bytes(bytes(data))
    monkeypatch.setattr(adt.pretrained, "DIR", folder)
    monkeypatch.setattr(adt.frame.shipped, "PRETRAINED_DIR", folder)
    return folder / name


@pytest.mark.faults
def test_flipped_shipped_transcriber_exits_2_naming_the_file(mdb_track, tmp_path, monkeypatch, capsys):
    """The probe's case: 256 flipped bytes in a weight tensor used to give a different MIDI with exit 0."""
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))  # no registry: the shipped model
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    weights = _flipped_copy(tmp_path, monkeypatch, "frame_crnn_standard.pt")
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid")]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "SHA-256" in err and "reinstall" in err
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.faults
def test_flipped_shipped_lm_and_separator_are_refused(tmp_path, monkeypatch):
    from adt.lm import gru
    from adt.separation import separator

    lm = _flipped_copy(tmp_path, monkeypatch, "gru_lm_groove.pt")
    with pytest.raises(adt.pretrained.ShippedWeightsError, match=re.escape(str(lm))):
        gru.load(lm)
    sep = _flipped_copy(tmp_path / "2", monkeypatch, "separator_standard.pt")
    monkeypatch.setattr(separator, "PRETRAINED_DIR", sep.parent)
    for load in (separator.shipped, separator.shipped_network):
        with pytest.raises(adt.pretrained.ShippedWeightsError, match=re.escape(str(sep))):
            load()


def _zero_4k(path) -> None:
    """The probe's corruption: 4 KB zeroed in place (size unchanged)."""
    with open(path, "r+b") as f:
        f.seek(128)
        f.write(bytes(4096))


@pytest.mark.faults
def test_a_zeroed_file_of_a_stage_folder_is_recomputed_with_a_warning(tmp_path, monkeypatch, caplog):
    import numpy as np

    from adt.atomic import save_array
    from adt.cache import stage_cache, verify

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    calls = []

    def compute(folder):
        calls.append(folder)
        save_array(folder / "x.npy", np.arange(4096, dtype=np.float32))
        return {"n": 4096}

    cache = stage_cache("shards", "1", "a")
    manifest = cache.get_or_compute(compute)
    assert set(manifest["files"]) == {"x.npy"} and manifest["files"]["x.npy"]["bytes"] > 4096
    assert cache.get_or_compute(compute) == manifest and len(calls) == 1  # intact: reused
    assert verify() == []
    _zero_4k(cache.dir / "x.npy")
    [found] = verify()
    assert found.path == cache.dir / "x.npy" and found.stage == "features" and "content differs" in found.why
    with caplog.at_level("WARNING", logger="adt.cache"):
        again = cache.get_or_compute(compute)
    assert len(calls) == 2 and again["files"] == manifest["files"]  # recomputed, the same bytes
    assert str(cache.dir / "x.npy") in caplog.text and "recomputing" in caplog.text
    assert np.load(cache.dir / "x.npy")[100] == 100 and verify() == []


@pytest.mark.faults
def test_a_zeroed_per_item_file_is_not_intact_and_adt_verify_names_it(tmp_path, monkeypatch, caplog, capsys):
    import numpy as np

    from adt.atomic import save_array
    from adt.cache import intact, record_path, seal

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    x = tmp_path / "data" / "features" / "2" / "log_mel" / "mdb__song.x.npy"
    assert not intact(x)  # missing
    seal(save_array(x, np.ones((1000, 80), dtype=np.float32)))
    assert record_path(x).is_file() and intact(x)
    assert main(["verify"]) == 0
    _zero_4k(x)
    assert main(["verify", "features"]) == 1
    out, err = capsys.readouterr()
    assert str(x) in out and "features recomputes it" in out and "1 corrupt file(s)" in err
    assert main(["verify", "beats"]) == 0  # another stage's files only
    assert main(["verify", "nope"]) == 2
    with caplog.at_level("WARNING", logger="adt.cache"):
        assert not intact(x)
    assert f"{x}: content differs" in caplog.text
    assert not x.exists() and not record_path(x).exists()  # removed: the stage writes it anew
    np.save(x, np.ones(3))  # a file written before records were kept: sealed as it is
    assert intact(x) and record_path(x).is_file()


@pytest.mark.faults
def test_an_unreadable_manifest_is_recomputed(tmp_path, monkeypatch):
    from adt.cache import stage_cache

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    cache = stage_cache("tatums", "1")
    cache.get_or_compute(lambda folder: {"a": 1})
    cache.manifest_path.write_bytes(bytes(100))
    assert cache.get_or_compute(lambda folder: {"a": 2})["a"] == 2


@pytest.mark.faults
def test_an_empty_mirror_archive_is_named_on_the_console(tmp_path, monkeypatch):
    """The probe's case: the console said only 'Execution of step "raw_dataset" failed'."""
    import dataclasses
    import hashlib
    import importlib
    import io
    import logging

    import dagster as dg

    from adt.data.datasets import get_module
    from pipelines.assets import ASSET
    from pipelines.console import StepLines
    from pipelines.io_manager import JsonIOManager
    from pipelines.resources import AdtSettings, DataStoreResource

    data, mirror = tmp_path / "data", tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("ADT_DATA_DIR", str(data))
    module = get_module("egmd")
    files = importlib.import_module("tests.layouts.egmd").archive_files()
    remotes = []
    for remote in module.REMOTES:
        (mirror / remote.filename).write_bytes(b"")  # empty where the archive should be
        remotes.append(dataclasses.replace(remote, sha256=(hashlib.sha256(files[remote.filename]).hexdigest(),),
                                           md5=(), size=len(files[remote.filename]), extracted_size=None))
    monkeypatch.setattr(module, "REMOTES", remotes)
    result = dg.materialize([ASSET["raw_dataset"]], partition_key="egmd", raise_on_error=False,
                            instance=dg.DagsterInstance.ephemeral(),
                            resources={"settings": AdtSettings(profile="tiny", mirror=str(mirror)),
                                       "io_manager": JsonIOManager(), "data_store": DataStoreResource()})
    assert not result.success
    console = io.StringIO()
    lines = StepLines(console)
    for event in result.get_step_failure_events():
        record = logging.LogRecord("dagster", logging.ERROR, "", 0, "failed", None, None)
        record.dagster_meta = {"dagster_event": event, "step_key": event.step_key}
        lines.emit(record)
    line = console.getvalue()
    assert "raw_dataset" in line and "FAILED" in line and remotes[0].filename in line, line
    assert "Execution of step" not in line


def test_a_manifest_from_before_the_records_gets_them_on_first_read(tmp_path, monkeypatch):
    import json

    from adt.cache import stage_cache, verify

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    cache = stage_cache("lm_bigram", "1")
    cache.dir.mkdir(parents=True)
    (cache.dir / "bigram.k5.json").write_text("{}")
    cache.manifest_path.write_text(json.dumps({"key": cache.key, "stage": "lm_bigram"}))  # an older release's
    assert cache.get_or_compute(lambda folder: pytest.fail("recomputed")) ["files"] == {
        "bigram.k5.json": {"bytes": 2, "xxh3_128": json.loads(cache.manifest_path.read_text())["files"]["bigram.k5.json"]["xxh3_128"]}}
    (cache.dir / "bigram.k5.json").write_text("[]")
    assert [c.path.name for c in verify()] == ["bigram.k5.json"]
