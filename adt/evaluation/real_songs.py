"""Song-disjoint cross-validation on the 9 real MDB songs: the real-song figure that counts (issue 26).

Protocol: the 3 fixed folds of :data:`adt.data.datasets.mdb.REAL_SONG_FOLDS`. For test fold k, one model
is trained on the rendered corpus plus the 6 songs of the other folds, of which :func:`validation_songs`
(one per other fold) are held out of training for every choice (epoch, peak-picking floors); fold k's
songs are scored by that model only. Each song is scored as ``adt transcribe`` would process it (the
whole audio file through :func:`adt.transcribe.transcriber.activations`, the model's own peak picking),
on its **drum-only recording** and on its **real full mix**. The reported figures pool the 9 songs
(:func:`summarize`): micro F-measure (3 classes BD SD HH, 50 ms, mir_eval), per class, per song, the
worst song, and the recall of every class on every song that has it.
"""

from __future__ import annotations

import numpy as np

from adt.vocab import CLASSES_3

#: What a real song is scored on: its drum-only recording and its real full mix.
INPUTS = ("drum", "mix")


def validation_songs(test_fold: int) -> tuple[str, ...]:
    """The real songs held out for validation when fold ``test_fold`` is tested: of each other fold, its
    song at position ``test_fold`` (so the three models validate on 6 different songs), sorted."""
    from adt.data.datasets.mdb import REAL_SONG_FOLDS, folds_for

    folds_for(test_fold)  # checks the fold number
    return tuple(sorted(f[test_fold] for j, f in enumerate(REAL_SONG_FOLDS) if j != test_fold))


def song_counts(model, audio: np.ndarray, sample_rate: int, reference: dict[str, np.ndarray],
                classes: tuple[str, ...] = CLASSES_3, gain: float = 1.0) -> dict[str, list[int]]:
    """(tp, fp, fn) per class of ``model`` on one recording, processed as ``adt transcribe`` does.

    Args:
        audio: (samples,) mono float, any sample rate in Hz; ``gain`` scales it first (level tests).
        reference: class -> onset times (seconds).
    """
    from adt.frame.peaks import peak_picking_params, pick_peaks
    from adt.frame.recipe import model_peak_picking
    from adt.metrics import match_counts
    from adt.transcribe.transcriber import activations

    act = activations(model, np.asarray(audio, dtype=np.float32) * gain, sample_rate)
    est = pick_peaks(act, **peak_picking_params(model_peak_picking(model)))
    return {c: [int(v) for v in match_counts(np.asarray(reference.get(c, [])), est[c])] for c in classes}


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"f": 2 * p * r / (p + r) if p + r else 0.0, "p": p, "r": r, "tp": tp, "fp": fp, "fn": fn}


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
        per_song[song] = {"f": _prf(*song_total.tolist())["f"], "recall": recall}
    out = _prf(*total.tolist())
    out["per_class"] = {c: _prf(*v.tolist()) for c, v in per_class.items()}
    out["per_song"] = per_song
    out["worst_song"] = min(((s, v["f"]) for s, v in per_song.items()), key=lambda t: t[1])
    recalls = [(s, c, r) for s, v in per_song.items() for c, r in v["recall"].items() if r is not None]
    out["min_recall"] = min(recalls, key=lambda t: t[2]) if recalls else None
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


def score_songs(model, songs, gains: tuple[float, ...] = (1.0,)) -> dict:
    """:func:`song_counts` of every :class:`adt.frame.real_songs.RealSong` on its drum-only recording and
    real mix at each input gain: song -> input ("drum" | "mix") -> str(gain) -> class -> (tp, fp, fn)."""
    from adt.audio import read_audio

    out = {}
    for s in songs:
        out[s.name] = {}
        for what, path in (("drum", s.drum_path), ("mix", s.mix_path)):
            audio, sr = read_audio(path, mono=True)
            out[s.name][what] = {str(g): song_counts(model, audio, sr, s.onsets, gain=g) for g in gains}
    return out
