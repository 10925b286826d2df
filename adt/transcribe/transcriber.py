"""Audio in, drum MIDI (and MusicXML) out, with a registered transcriber.

Pipeline (:func:`transcribe_file`):

1. optional drum separation of the mixture (:mod:`adt.separation`;
   separator chosen by :func:`find_separator`);
2. the model's features (:func:`adt.features.spectrogram.model_features`: log mel or log filtered
   spectrogram, 100 fps) -> frame-level CRNN onset activation function -> madmom peak
   picking with the rule the model was selected with (:func:`adt.frame.peaks.pick_peaks`);
3. optional tatum quantization (tatum paper, Sec. III-A / IV-B): beats of the mixture
   with madmom (:func:`adt.rhythm.beats.track_beats`), the pipeline's tatum grid (4 tatums
   per beat by default; :func:`adt.rhythm.tatums.tatum_grid`), every onset snapped to its nearest tatum with
   one onset per drum and tatum (:func:`adt.lm.scores.drum_score`);
4. GM drum MIDI (BD 36, SD 38, TT 47, HH 42, CY 49) and optionally a MusicXML drum
   score (:mod:`adt.transcribe.musicxml`).

The model: :func:`adt.transcribe.models.load_transcriber` (the registry's champion, else the shipped
transcriber, or any model named), loaded weights-only.

The model says what it heard of mixtures in training (:func:`adt.frame.checkpoint.model_input`):
a ``"separated"`` model gets the drum stem of the audio (step 1), a ``"mix"`` or ``"mix+drums"``
model the audio as it is, full mix or drum-only recording alike.

MIDI velocity: each onset's activation peak a (0-1) as ``round(127 * a)`` (at least 1); with tatum
output the loudest onset snapped to a tatum gives its velocity.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from adt.audio import normalize_level, read_audio, resample
from adt.config import data_dir
from adt.cpu import DEFAULT_THREADS
from adt.features.spectrogram import HOP, SAMPLE_RATE, model_features
from adt.frame.checkpoint import model_peak_picking
from adt.frame.peaks import peak_heights, peak_picking_params, pick_peaks
from adt.frame.shipped import PRETRAINED_DIR, PRETRAINED_MODEL, pretrained_path  # noqa: F401 (re-exported)
from adt.midi import write_drum_midi
from adt.rhythm.beats import track_beats
from adt.rhythm.tatums import tatum_grid as grid_of
from adt.separation import separator as separators
from adt.transcribe.models import load_registered_model
from adt.transcribe.musicxml import write_musicxml
from adt.vocab import CLASSES_5

#: Default tatums per beat of the exported grid (16th notes in 4/4, tatum paper Sec. III-A;
#: ``adt.config.Settings.tatum_subdivisions``).
TATUMS_PER_BEAT = 4


class BeatTrackingError(ValueError):
    """The beat tracker found too few beats to build a tatum grid (the message names the file)."""


@dataclasses.dataclass
class Transcription:
    """What :func:`transcribe_file` found and wrote.

    Attributes:
        onsets: class name -> onset times in seconds as written to the MIDI file
            (tatum times when quantized).
        frame_onsets: class name -> peak-picked onset times in seconds (100 fps frames).
        beats: beat times in seconds (extrapolated to cover the audio) or None.
        tatums: tatum times in seconds, shape (M,), or None.
        score: (5, M) uint8 tatum-level score (rows BD SD TT HH CY) or None.
        tempo_bpm: median tempo of the beats, or None.
        separated: whether the drums were separated from a mixture first.
        velocities: class name -> MIDI velocity (1-127) of each onset in ``onsets`` (module docstring).
        activations: the onset activation function peak picking ran on, shape (frames, 5) float32 in
            [0, 1], columns BD SD TT HH CY, frame i at i / 100 s (100 fps); what ``adt transcribe --plot``
            draws.
        peak_picking: the keyword arguments of :func:`adt.frame.peaks.pick_peaks` used; its ``min_peak``
            is the per-class activation floor (a class -> value dict, or one value; 0: none).
    """

    onsets: dict[str, np.ndarray]
    frame_onsets: dict[str, np.ndarray]
    beats: np.ndarray | None = None
    tatums: np.ndarray | None = None
    score: np.ndarray | None = None
    tempo_bpm: float | None = None
    separated: bool = False
    velocities: dict[str, np.ndarray] | None = None
    activations: np.ndarray | None = None
    peak_picking: dict | None = None


def peak_velocities(activation: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """MIDI velocities of onsets from their activation peak: round(127 * a), 1-127; shapes (T,), (N,) -> (N,)."""
    return np.clip(np.round(127 * peak_heights(activation, onsets)), 1, 127).astype(int)


def snapped_velocities(onsets: np.ndarray, velocities: np.ndarray, tatums: np.ndarray,
                       snapped: np.ndarray) -> np.ndarray:
    """Velocities of tatum-snapped onsets: the loudest frame onset whose nearest tatum each one is.

    Args:
        onsets, velocities: frame onsets (seconds) and their velocities, shape (N,).
        tatums: the grid (seconds), shape (M,); snapped: the tatum times kept (:func:`quantize`).
    """
    if len(snapped) == 0:
        return np.zeros(0, dtype=int)
    onsets = np.asarray(onsets, dtype=float)
    i = np.clip(np.searchsorted(tatums, onsets), 1, max(1, len(tatums) - 1))
    left, right = tatums[i - 1], tatums[np.minimum(i, len(tatums) - 1)]
    nearest = np.where(onsets - left <= right - onsets, left, right)  # ties to the earlier, as quantize
    loudest = {}
    for t, v in zip(nearest, velocities):
        loudest[float(t)] = max(loudest.get(float(t), 0), int(v))
    return np.array([loudest.get(float(t), 100) for t in snapped], dtype=int)


def find_separator(device: str = "cpu", timeout_s: float = 5.0):
    """The drum separator to use, or None.

    In this order: the graph's chosen separator (the newest separation study's best validation drums
    SDR, :func:`adt.separation.separator.find_chosen`), else the separator shipped with the package
    (:func:`adt.separation.separator.shipped`); openunmix's pretrained ``umxl`` drums weights (from the
    torch.hub cache, else downloaded: at most ``timeout_s`` seconds to fail offline) when neither loads.

    Returns:
        ``(separator, description)`` (an :class:`adt.separation.separator.Separator`), or
        ``(None, reason)`` when none can be loaded.
    """
    sep, what = separators.find_chosen(data_dir(create=False), device=device)
    if sep is None:
        sep = separators.pretrained("umxl", device=device, timeout_s=timeout_s)
        what = sep.description if sep is not None else f"{what}; no pretrained Open-Unmix weights (offline?)"
    return sep, what


def tatum_grid(audio: np.ndarray, sample_rate: int, duration_s: float, subdivisions: int = TATUMS_PER_BEAT):
    """Beats of the audio with madmom and the project's tatum grid over the whole audio
    (:func:`adt.rhythm.tatums.tatum_grid`, the grid of the ``tatums`` asset).

    Args:
        audio: mono samples, shape (samples,).
        sample_rate: Hz.
        duration_s: length of the audio in seconds.
        subdivisions: tatums per beat (4: 16th notes; 3 or 6 for triplet feels).

    Returns:
        ``(beats, tatums, pickup)``: beat times (seconds, extended to cover the audio),
        strictly increasing tatum times (seconds, all >= 0) and the number of pickup
        tatums before the first beat (0 .. subdivisions - 1).

    Raises:
        ValueError: fewer than 2 beats found (audio too short, silent or without pulse).
    """
    grid = grid_of(track_beats(audio, sample_rate), subdivisions, duration_s)
    return grid.beats, grid.tatums, grid.pickup


def quantize(onsets: dict[str, np.ndarray], tatums: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Snap onsets to their nearest tatum, one onset per drum and tatum.

    Uses :func:`adt.lm.scores.drum_score` (nearest tatum, ties to the earlier one; tatum
    paper Sec. IV-B) and reads the score back.

    Returns:
        ``(score (5, M) uint8, class name -> tatum times in seconds)``.
    """
    from adt.lm.scores import drum_score  # lazy: pandas 0.3 s at adt transcribe

    times = np.concatenate([np.asarray(onsets.get(c, []), dtype=float) for c in CLASSES_5])
    drums = np.concatenate([np.full(len(onsets.get(c, [])), k, dtype=np.int64) for k, c in enumerate(CLASSES_5)])
    y = drum_score(times, drums, tatums, k=5)
    return y, {c: tatums[np.flatnonzero(y[k])] for k, c in enumerate(CLASSES_5)}


#: Chunked inference (:func:`activations`): windows of 60 s, each with 10 s of context on both sides.
CHUNK_FRAMES, CONTEXT_FRAMES = 6000, 1000


def activations(model, audio: np.ndarray, sample_rate: int, device: str = "cpu", chunk_frames: int = CHUNK_FRAMES,
                context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """The model's onset activation function of mono ``audio``, computed in chunks so memory does not grow
    with the input's length beyond the audio itself.

    Each chunk of ``chunk_frames`` frames (100 fps) gets the features of its samples with ``context_frames``
    more on both sides (a frame's samples are those of the whole signal: the STFT frames are cut on the
    441-sample hop grid, the two ends keep the whole signal's padding, so the features are identical); the
    model runs on chunk + context and the context's activations are dropped. What grew with the input's
    length was the STFT (2048-point, complex: 49 MB per minute) and the network's feature maps (FrameCRNN:
    32 maps x 80 bands, 61 MB per minute per layer); now they are bounded by one chunk with its context
    (80 s). Inputs up to 60 s are one chunk (the whole-track pass). Bidirectional recurrent layers see 10 s
    on each side instead of the whole track: activations differ from the whole-track pass by at most
    about 0.01 (measured on MDB Drums; ``tests/test_cli.py``). A model with an ``input_level_db`` (the shipped
    one: the median RMS of its rendered training audio) hears the input scaled to that RMS level over the
    whole signal first (:func:`adt.audio.normalize_level`): any input level gives the same onsets.

    Args:
        audio: (samples,) float, any sample rate in Hz.

    Returns:
        (frames, classes) float32 in [0, 1], frames as :func:`adt.features.spectrogram.model_features` gives.
    """
    audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
    audio = normalize_level(audio, getattr(model, "input_level_db", None))
    log_mel = getattr(model, "feature_type", "log_mel") == "log_mel"
    n = len(audio)
    frames = 1 + n // HOP if log_mel else -(-n // HOP)
    pad = 3  # frames of samples beyond a chunk's edge frames: 3 x 441 >= half the 2048-sample window
    out = []
    for start in range(0, frames, chunk_frames):
        stop = min(frames, start + chunk_frames)
        lo, hi = max(0, start - context_frames), min(frames, stop + context_frames)
        a, b = max(0, lo - pad) * HOP, min(n, (hi - 1 + pad) * HOP + 1)
        x = model_features(model, audio[a:b], SAMPLE_RATE)[lo - a // HOP: hi - a // HOP]
        with torch.no_grad():
            act = model.activations(torch.from_numpy(np.ascontiguousarray(x)).to(device)).cpu().numpy()
        out.append(act[start - lo: stop - lo])
    return np.concatenate(out).astype(np.float32)


def transcribe_file(audio_path: str | os.PathLike, midi_path: str | os.PathLike, model=None,
                    threshold: float | None = None, progress: bool = True, separator=None, tatum: bool = False,
                    musicxml_path: str | os.PathLike | None = None, device: str = "cpu",
                    subdivisions: int = TATUMS_PER_BEAT) -> Transcription:
    """Transcribe one audio file into a GM drum MIDI file (and a MusicXML score).

    Args:
        audio_path: any file soundfile reads.
        midi_path: MIDI output (written atomically).
        model: a loaded transcriber; default: :func:`adt.transcribe.models.load_registered_model`.
        threshold: peak-picking threshold with the tatum paper's windows; None: the peak
            picking the model was selected with (:func:`adt.frame.checkpoint.model_peak_picking`).
        separator: a drum separator (:func:`find_separator`, :class:`adt.separation.separator.Separator`) run on the
            mixture first; None transcribes the audio as it is.
        tatum: write tatum-quantized onset times (see :func:`quantize`) to the MIDI.
        musicxml_path: also write the tatum-quantized score as MusicXML (4/4, 16ths,
            tempo of the beats; :func:`adt.transcribe.musicxml.write_musicxml`).
        device: torch device of the model and separator ("cpu" or "cuda").
        subdivisions: tatums per beat of the grid (``tatum``, ``musicxml_path``); MusicXML
            needs 4 (16th notes).

    Returns:
        :class:`Transcription`.

    Raises:
        adt.audio.AudioReadError: missing or unreadable audio (names the file).
        adt.transcribe.models.NoModelError: no model given and none registered.
        BeatTrackingError: tatum output asked for, but too few beats found.
        ValueError: MusicXML asked for with ``subdivisions`` other than 4.
    """
    if musicxml_path is not None and subdivisions != TATUMS_PER_BEAT:
        raise ValueError(f"MusicXML export writes 16th notes: it needs {TATUMS_PER_BEAT} tatums per beat, "
                         f"got {subdivisions}")
    torch.set_num_threads(DEFAULT_THREADS)
    quantized = tatum or musicxml_path is not None
    steps = tqdm(total=3 + (separator is not None) + quantized, desc=Path(audio_path).name,
                 disable=not progress, unit="step")
    # stereo only for the separator; else the mono mix alone (half the memory of a long input)
    audio, sr = read_audio(audio_path, mono=separator is None)
    mix = audio if separator is None else audio.mean(axis=0)
    duration = audio.shape[-1] / sr
    steps.update()
    if model is None:
        model, _ = load_registered_model(device=device)
    drums, drums_sr = mix, sr
    if separator is not None:
        # not at the top: the module's SAMPLE_RATE is adt.features.spectrogram's
        from adt.separation.separator import SAMPLE_RATE

        drums, drums_sr = separator.drums(audio, sr).mean(axis=0), SAMPLE_RATE
        steps.update()
    act = activations(model, drums, drums_sr, device)
    steps.update()
    if threshold is None:
        picking = peak_picking_params(model_peak_picking(model))
    else:
        picking = {"threshold": threshold}
    frame_onsets = pick_peaks(act, **picking)
    velocities = {c: peak_velocities(act[:, k], frame_onsets[c]) for k, c in enumerate(CLASSES_5)}
    result = Transcription(onsets=frame_onsets, frame_onsets=frame_onsets, separated=separator is not None,
                           velocities=velocities, activations=act, peak_picking=picking)
    if quantized:
        add_tatums(result, mix, sr, duration, audio_path, subdivisions, tatum, musicxml_path)
        steps.update()
    write_drum_midi(midi_path, result.onsets, tempo_bpm=result.tempo_bpm or 120.0, velocities=result.velocities)
    steps.update()
    steps.close()
    return result


def add_tatums(result: Transcription, mix: np.ndarray, sr: int, duration: float, audio_path: str | os.PathLike,
               subdivisions: int = TATUMS_PER_BEAT, tatum: bool = False,
               musicxml_path: str | os.PathLike | None = None) -> None:
    """The tatum output of :func:`transcribe_file`, in place: the beats and tatum grid of the mix
    (:func:`tatum_grid`), the tempo and the tatum-level score (:func:`quantize`); with ``tatum`` the snapped
    onsets and their velocities replace the frame onsets; with ``musicxml_path`` the score is written as MusicXML.

    Raises:
        BeatTrackingError: too few beats found (the message names ``audio_path``).
    """
    frame_onsets, velocities = result.frame_onsets, result.velocities
    try:
        beats, tatums, pickup = tatum_grid(mix, sr, duration, subdivisions)
    except ValueError as exc:
        raise BeatTrackingError(f"{audio_path}: {exc}") from exc
    result.beats, result.tatums = beats, tatums
    result.tempo_bpm = float(60.0 / np.median(np.diff(beats)))
    result.score, snapped = quantize(frame_onsets, tatums)
    if tatum:
        result.onsets = snapped
        result.velocities = {c: snapped_velocities(frame_onsets[c], velocities[c], tatums, snapped[c])
                             for c in CLASSES_5}
    if musicxml_path is not None:
        offset = (TATUMS_PER_BEAT - pickup) % TATUMS_PER_BEAT  # bar 1 starts on a beat
        write_musicxml(musicxml_path, result.score, result.tempo_bpm, offset_tatums=offset,
                       title=Path(audio_path).stem)
