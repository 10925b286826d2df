"""Listening examples of a rendered dataset: the first seconds of one track per split, as audio
and as a piano roll, so a person can hear and see what the models train on (MLflow artifacts
of the dataset card run, experiment ``adt/datasets``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from adt.atomic import atomic_path
from adt.audio import write_audio
from adt.cache import safe_name
from adt.data.datasets import SPLITS, DatasetTables
from adt.vocab import CLASSES_5


def plot_onsets(audio: np.ndarray, sample_rate: int, onsets: dict[str, np.ndarray], path: str | Path,
                title: str = "") -> Path:
    """A piano roll of ``onsets`` (class -> times in seconds) under the audio's waveform, as PNG
    (matplotlib, Agg backend), written atomically."""
    # lazy: pyplot after matplotlib.use('Agg'); matplotlib 0.5 s at import pipelines
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = audio.shape[-1] / sample_rate
    fig, (wave, roll) = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    step = max(1, len(mono) // 4000)
    wave.plot(np.arange(0, len(mono), step) / sample_rate, mono[::step], lw=0.5, color="0.3")
    wave.set_yticks([])
    wave.set_title(title, fontsize=9)
    for row, cls in enumerate(CLASSES_5):
        times = np.asarray(onsets.get(cls, []))
        roll.vlines(times[times < seconds], row - 0.4, row + 0.4, lw=1.2)
    roll.set_yticks(range(len(CLASSES_5)), CLASSES_5)
    roll.set_xlim(0, seconds)
    roll.set_xlabel("seconds")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)


def write_examples(tables: DatasetTables, folder: str | Path, seconds: float = 10.0) -> list[Path]:
    """For the first rendered track (one naming a kit) of each split: the first ``seconds`` of its
    mix (or drums) as ``<split>_<track>.wav`` and its piano roll as ``.png``, in ``folder``.

    Returns:
        the files written (none for a dataset without kits, i.e. not rendered).
    """
    folder = Path(folder)
    t = tables.tracks[tables.tracks.kit.notna()]
    written = []
    for split in SPLITS:
        rows = t[t.split == split]
        if rows.empty:
            continue
        row = rows.iloc[0]
        source = row.mix_path if isinstance(row.mix_path, str) else row.drum_path
        info = sf.info(source)
        audio, sr = sf.read(source, frames=int(seconds * info.samplerate), dtype="float32", always_2d=True)
        stem = folder / f"{split}_{safe_name(row.track_id)}"
        written.append(write_audio(stem.with_suffix(".wav"), audio.T, sr))
        o = tables.onsets[tables.onsets.track_id == row.track_id]
        onsets = {c: o.loc[o.drum == c, "time_s"].to_numpy() for c in CLASSES_5}
        written.append(plot_onsets(audio.T, sr, onsets, stem.with_suffix(".png"),
                                   f"{row.track_id} ({split}, kit {row.kit})"))
    return written
