"""``adt transcribe --plot``: a figure of what the transcriber heard and found.

Six axes sharing one time axis (seconds): the song's waveform (channels averaged; a min/max envelope
per pixel column, so a long song draws as fast as a short one), then per drum class (BD SD TT HH CY)
its onset activation function (0..1, 100 fps), the peak-picked onsets marked on it and the per-class
floor of the peak picking (``min_peak``, e.g. the shipped model's floors tuned on validation) as a
dashed line where there is one. Drawn with matplotlib's object-oriented API on the Agg canvas
(:class:`matplotlib.figure.Figure`: no pyplot, no global backend switched), saved as PNG atomically
(:func:`adt.atomic.atomic_path`). matplotlib is imported only here, so ``adt transcribe`` without
``--plot`` never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adt.atomic import atomic_path
from adt.vocab import CLASSES_5

#: Frames per second of the activation function (:data:`adt.features.spectrogram.FPS`).
FPS = 100
#: Figure resolution (pixels per inch) and size: width ``WIDTH_PER_S`` inches per second of audio plus
#: ``WIDTH_BASE_IN``, within ``[MIN_WIDTH_IN, MAX_WIDTH_IN]`` (at 100 dpi 50 px per second: a 16th note at
#: 120 BPM is 6 px wide; songs longer than about 2 minutes are compressed to 6000 px); height fixed.
DPI = 100
WIDTH_BASE_IN, WIDTH_PER_S, MIN_WIDTH_IN, MAX_WIDTH_IN = 2.0, 0.5, 10.0, 60.0
HEIGHT_IN = 11.0
#: Line colour per drum class.
COLOURS = {"BD": "tab:blue", "SD": "tab:orange", "TT": "tab:green", "HH": "tab:purple", "CY": "tab:brown"}


def figure_size(duration_s: float) -> tuple[float, float]:
    """(width, height) in inches of the figure of a song ``duration_s`` seconds long (module constants)."""
    width = min(MAX_WIDTH_IN, max(MIN_WIDTH_IN, WIDTH_BASE_IN + WIDTH_PER_S * float(duration_s)))
    return width, HEIGHT_IN


def envelope(audio: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of mono ``audio`` (samples,) over ``columns`` equal spans.

    Returns:
        ``(centre, low, high)``, each shape (columns',) with columns' = min(columns, samples): the
        span centres as fractions of the length (0..1), the minimum and maximum sample of each span.
    """
    n = len(audio)
    columns = max(1, min(int(columns), n))
    edges = np.linspace(0, n, columns + 1).astype(np.int64)
    low = np.minimum.reduceat(audio, edges[:-1])
    high = np.maximum.reduceat(audio, edges[:-1])
    return (edges[:-1] + edges[1:]) / (2.0 * n), low, high


def floor_of(peak_picking: dict | None, drum: str) -> float:
    """The activation floor of class ``drum`` in ``peak_picking`` (:func:`adt.frame.peaks.pick_peaks`'s
    keyword arguments, ``min_peak`` one value or a class -> value dict); 0.0 when there is none."""
    floor = (peak_picking or {}).get("min_peak", 0.0)
    return float(floor.get(drum, 0.0) if isinstance(floor, dict) else floor or 0.0)


def transcription_figure(audio: np.ndarray, sample_rate: int, activations: np.ndarray,
                         onsets: dict[str, np.ndarray], peak_picking: dict | None = None, title: str = "",
                         fps: int = FPS):
    """The figure of one transcription (module docstring), not yet saved.

    Args:
        audio: the song, shape (samples,) or (channels, samples) (channels averaged), float.
        sample_rate: of ``audio``, Hz.
        activations: onset activation function, shape (frames, 5) in [0, 1], columns BD SD TT HH CY,
            frame i at i / ``fps`` seconds.
        onsets: class name -> peak-picked onset times in seconds (marked at their activation).
        peak_picking: :func:`adt.frame.peaks.pick_peaks` keyword arguments used; its ``min_peak`` > 0 is
            drawn as a dashed line per class.
        title: the figure's title (e.g. the file and the model).
        fps: frames per second of ``activations`` (100).

    Returns:
        a :class:`matplotlib.figure.Figure` on an Agg canvas, :func:`figure_size` inches at :data:`DPI`,
        with 6 axes: the waveform, then one per class in :data:`adt.vocab.CLASSES_5` order.

    Raises:
        ValueError: ``activations`` is not (frames, 5).
    """
    act = np.asarray(activations, dtype=np.float32)
    if act.ndim != 2 or act.shape[1] != len(CLASSES_5):
        raise ValueError(f"activations of shape {act.shape}: need (frames, {len(CLASSES_5)})")
    mono = np.asarray(audio, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    duration = max(len(mono) / sample_rate, len(act) / fps)
    width, height = figure_size(duration)
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1 + len(CLASSES_5), 1, sharex=True, height_ratios=[1.4] + [1.0] * len(CLASSES_5))
    wave = axes[0]
    if len(mono):
        centre, low, high = envelope(mono, int(width * DPI))
        wave.fill_between(centre * len(mono) / sample_rate, low, high, color="0.35", linewidth=0.4)
    peak = max(float(np.max(np.abs(mono))) if len(mono) else 0.0, 1e-3)
    wave.set_ylim(-1.05 * peak, 1.05 * peak)
    wave.set_ylabel("audio")
    wave.set_title(title or "transcription", loc="left", fontsize=11)
    times = np.arange(len(act)) / fps
    for k, (ax, drum) in enumerate(zip(axes[1:], CLASSES_5)):
        ax.plot(times, act[:, k], color=COLOURS[drum], linewidth=0.8)
        found = np.asarray(onsets.get(drum, []), dtype=float)
        if len(found) and len(act):
            frames = np.clip(np.round(found * fps).astype(int), 0, len(act) - 1)
            ax.plot(found, act[frames, k], "v", color="crimson", markersize=4, label="onsets")
        floor = floor_of(peak_picking, drum)
        if floor > 0:
            ax.axhline(floor, color="0.3", linestyle="--", linewidth=0.8, label=f"floor {floor:.2f}")
        ax.set_ylim(0, 1.08)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel(f"{drum}\n({len(found)})", rotation=0, ha="right", va="center")
        ax.grid(axis="x", alpha=0.3)
        if len(found) or floor > 0:
            ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel("time (s)")
    return fig


def plot_transcription(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, activations: np.ndarray,
                       onsets: dict[str, np.ndarray], peak_picking: dict | None = None, title: str = "",
                       fps: int = FPS) -> Path:
    """Write :func:`transcription_figure` (same arguments) as PNG to ``path`` (whatever its suffix), atomically.

    Returns:
        ``path``.

    Raises:
        ValueError: ``activations`` is not (frames, 5).
        OSError: the file cannot be written (the temporary file is removed).
    """
    fig = transcription_figure(audio, sample_rate, activations, onsets, peak_picking, title, fps)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)
