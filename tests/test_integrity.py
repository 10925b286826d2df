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
