"""Song-disjoint cross-validation on the 9 real MDB songs: the real-song figure that counts (issue 26).

Protocol: the 3 fixed folds of :data:`adt.data.datasets.mdb.REAL_SONG_FOLDS`. For test fold k, one model
is trained on the rendered corpus plus the 6 songs of the other folds, of which :func:`adt.data.datasets.mdb.validation_songs`
(one per other fold) are held out of training for every choice (epoch, peak-picking floors); fold k's
songs are scored by that model only. Each song is scored as ``adt transcribe`` would process it (the
whole audio file through :func:`adt.transcribe.transcriber.activations`, the model's own peak picking),
on its **drum-only recording** and on its **real full mix**. The reported figures pool the 9 songs
(:func:`summarize`): micro F-measure (3 classes BD SD HH, 50 ms, mir_eval), per class, per song, the
worst song, and the recall of every class on every song that has it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from adt.audio import read_audio, resample
from adt.frame.checkpoint import model_peak_picking
from adt.frame.peaks import peak_picking_params, pick_peaks
from adt.metrics import match_counts, prf
from adt.transcribe.transcriber import activations
from adt.vocab import CLASSES_3, CLASSES_5

#: What a real song is scored on: its drum-only recording and its real full mix.
INPUTS = ("drum", "mix")


def song_counts(model, audio: np.ndarray, sample_rate: int, reference: dict[str, np.ndarray],
                classes: tuple[str, ...] = CLASSES_3, gain: float = 1.0) -> dict[str, list[int]]:
    """(tp, fp, fn) per class of ``model`` on one recording, processed as ``adt transcribe`` does.

    Args:
        audio: (samples,) mono float, any sample rate in Hz; ``gain`` scales it first (level tests).
        reference: class -> onset times (seconds).
    """
    act = activations(model, np.asarray(audio, dtype=np.float32) * gain, sample_rate)
    est = pick_peaks(act, **peak_picking_params(model_peak_picking(model)))
    return {c: [int(v) for v in match_counts(np.asarray(reference.get(c, [])), est[c])] for c in classes}


def summarize(counts: dict[str, dict[str, list[int]]], classes: tuple[str, ...] = CLASSES_3) -> dict:
    """Pooled figures of per-song counts.

    Args:
        counts: song -> class -> (tp, fp, fn) (:func:`song_counts`).

    Returns:
        ``{"f", "p", "r", "per_class": {c: {f, p, r}}, "per_song": {song: {"f", "recall": {c: r or None}}},
        "worst_song": (song, f), "min_recall": (song, class, r)}``: micro over all songs and classes; a class
        a song does not have has recall None and no part in ``min_recall``.
    """
    total = np.zeros(3, dtype=int)
    per_class = {c: np.zeros(3, dtype=int) for c in classes}
    per_song = {}
    for song, by_class in sorted(counts.items()):
        song_total = np.zeros(3, dtype=int)
        recall = {}
        for c in classes:
            v = np.asarray(by_class[c])
            per_class[c] += v
            song_total += v
            recall[c] = None if v[0] + v[2] == 0 else float(v[0] / (v[0] + v[2]))
        total += song_total
        per_song[song] = {"f": prf(*song_total.tolist())["f"], "recall": recall}
    out = prf(*total.tolist())
    out["per_class"] = {c: prf(*v.tolist()) for c, v in per_class.items()}
    out["per_song"] = per_song
    out["worst_song"] = min(((s, v["f"]) for s, v in per_song.items()), key=lambda t: t[1])
    recalls = [(s, c, r) for s, v in per_song.items() for c, r in v["recall"].items() if r is not None]
    out["min_recall"] = min(recalls, key=lambda t: t[2]) if recalls else None
    return out


def degenerate(summary: dict) -> list[str]:
    """What makes a :func:`summarize` result degenerate, one line each (empty when none): no onset matched at
    all (F 0), or a class that a song has and the model never finds on it (recall 0: a silenced class, e.g.
    a peak floor above every activation). A recall under 0.5 is a missed goal, not a degenerate result."""
    out = [] if summary["f"] > 0 else ["F 0: the model finds no onset"]
    out += [f"{song}: {c} silenced (recall 0)" for song, v in summary["per_song"].items()
            for c, r in v["recall"].items() if r == 0]
    return out


def markdown(summaries: dict[str, dict], classes: tuple[str, ...] = CLASSES_3) -> str:
    """Two Markdown tables of :func:`summarize` results keyed by row label (e.g. "drum-only"): the pooled
    figures with the worst song, then per song its F and per-class recall."""
    head = "| input | F | P | R | " + " | ".join(f"{c} F" for c in classes) + " | worst song (F) | lowest class recall |"
    rows = [head, "|" + "---|" * (6 + len(classes))]
    for label, s in summaries.items():
        worst = f"{s['worst_song'][0].removeprefix('MusicDelta_')} ({s['worst_song'][1]:.3f})"
        low = s["min_recall"]
        low_text = f"{low[0].removeprefix('MusicDelta_')} {low[1]} {low[2]:.2f}" if low else "-"
        rows.append(f"| {label} | {s['f']:.3f} | {s['p']:.3f} | {s['r']:.3f} | "
                    + " | ".join(f"{s['per_class'][c]['f']:.3f}" for c in classes) + f" | {worst} | {low_text} |")
    songs = sorted({song for s in summaries.values() for song in s["per_song"]})
    head2 = "| song | " + " | ".join(f"{label} F | " + " | ".join(f"{c} R" for c in classes)
                                     for label in summaries) + " |"
    rows2 = [head2, "|" + "---|" * (1 + len(summaries) * (1 + len(classes)))]
    for song in songs:
        cells = []
        for s in summaries.values():
            v = s["per_song"].get(song)
            if v is None:
                cells += ["-"] * (1 + len(classes))
                continue
            cells.append(f"{v['f']:.3f}")
            cells += ["-" if v["recall"][c] is None else f"{v['recall'][c]:.2f}" for c in classes]
        rows2.append(f"| {song.removeprefix('MusicDelta_')} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n" + "\n".join(rows2)


#: Degraded versions of a recording (:func:`degrade`): a dark recording, 22.05-kHz audio, no sub-bass.
DEGRADATIONS = ("lowpass8k", "sr22k", "highpass200")


def degrade(audio: np.ndarray, sample_rate: int, how: str) -> tuple[np.ndarray, int]:
    """``audio`` (samples,) low-passed at 8 kHz (8th-order Butterworth, zero phase), resampled to 22.05 kHz
    (nothing above 11 kHz), or high-passed at 200 Hz (4th order): (audio, sample rate Hz).

    Raises:
        ValueError: an unknown ``how`` (:data:`DEGRADATIONS`).
    """
    if how == "lowpass8k":
        return sosfiltfilt(butter(8, 8000, fs=sample_rate, output="sos"), audio).astype(np.float32), sample_rate
    if how == "highpass200":
        sos = butter(4, 200, "highpass", fs=sample_rate, output="sos")
        return sosfiltfilt(sos, audio).astype(np.float32), sample_rate
    if how == "sr22k":
        return resample(np.asarray(audio, dtype=np.float32), sample_rate, 22050), 22050
    raise ValueError(f"unknown degradation {how!r}; choose one of {DEGRADATIONS}")


def score_songs(model, songs, gains: tuple[float, ...] = (1.0,), degradations: tuple[str, ...] = ()) -> dict:
    """:func:`song_counts` of every :class:`adt.frame.real_songs.RealSong` on its drum-only recording and
    real mix at each input gain (key ``str(gain)``) and each of ``degradations`` (key its name, gain 1):
    song -> input ("drum" | "mix") -> key -> class -> (tp, fp, fn)."""
    out = {}
    for s in songs:
        out[s.name] = {}
        for what, path in (("drum", s.drum_path), ("mix", s.mix_path)):
            audio, sr = read_audio(path, mono=True)
            out[s.name][what] = {str(g): song_counts(model, audio, sr, s.onsets, gain=g) for g in gains}
            for how in degradations:
                out[s.name][what][how] = song_counts(model, *degrade(audio, sr, how), s.onsets)
    return out


def activation_figure(models: dict, audio: np.ndarray, sample_rate: int, reference: dict[str, np.ndarray],
                      title: str, seconds: tuple[float, float] = (0.0, 8.0)):
    """A matplotlib figure: per class (BD SD HH), the onset activation function of each of ``models``
    (label -> model) over ``seconds`` of one recording, with its reference onsets and each model's peak floor.

    Where a class's activation never reaches its floor on a real song, the figure shows it (issue 26: the
    shipped renders-only model's hi-hats on low-passed audio).
    """
    # lazy: pyplot after matplotlib.use('Agg')
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(CLASSES_3), 1, figsize=(10, 6), sharex=True)
    lo, hi = (int(s * 100) for s in seconds)
    t = np.arange(lo, hi) / 100
    for label, model in models.items():
        act = activations(model, audio, sample_rate)[lo:hi]
        floors = peak_picking_params(model_peak_picking(model)).get("min_peak", 0.5)
        for ax, c in zip(axes, CLASSES_3):
            line, = ax.plot(t[:len(act)], act[:, CLASSES_5.index(c)], label=label, lw=1)
            floor = floors.get(c, 0.5) if isinstance(floors, dict) else floors
            ax.axhline(floor, color=line.get_color(), ls=":", lw=0.8)
    for ax, c in zip(axes, CLASSES_3):
        ref = reference.get(c, np.array([]))
        for x in ref[(ref >= seconds[0]) & (ref < seconds[1])]:
            ax.axvline(x, color="k", alpha=0.25, lw=0.8)
        ax.set_ylabel(f"{c} activation")
        ax.set_ylim(0, 1.02)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title, fontsize=10)
    axes[-1].set_xlabel("time (s); grey: reference onsets; dotted: peak floors")
    fig.tight_layout()
    return fig
