"""`adt transcribe` errors that need no trained model."""

from __future__ import annotations

from adt.cli import main


def test_no_registered_model_is_a_clear_error(tmp_path, monkeypatch, capsys, mdb_track):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid")]) == 2
    err = capsys.readouterr().err
    assert "no model registered" in err and "make demo" in err
    assert not (tmp_path / "out.mid").exists()


def test_unreadable_audio_is_named(tmp_path, capsys):
    bad = tmp_path / "noise.wav"
    bad.write_text("not audio")
    assert main(["transcribe", str(bad), "-o", str(tmp_path / "out.mid")]) == 2
    assert "noise.wav" in capsys.readouterr().err
