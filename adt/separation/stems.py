"""The separation stage: the separation study, its chosen separator, and a drum stem for every mixture.

:func:`separate_mixtures` (asset ``drum_stems``) runs the separation study once per corpus and profile
(:func:`adt.separation.study.run_study`: the interleaved multitask paper's procedures, Open-Unmix
trained on the same data, the pretrained ``umxl`` when it loads, the shipped separator; the profile's
``separation_models`` only, when it names some; with ``start_from_shipped`` the models of the shipped
architecture fine-tuned from its weights; with the corpus's MDB songs that have multitracks as real
stems, fold ``StudySettings.real_test_fold`` tested; cached under ``<data>/separation_study/<key>``,
resumable per model), takes the *chosen* separator (:func:`adt.separation.study.choose`: the best
validation drums SDR, on the real validation songs among the models that never heard them, never worse
on the rendered validation songs than the shipped separator; ``adt transcribe`` and ``adt separate``
then use it) and separates every mixture once with it (cached per track; in worker processes of one
thread each, :func:`adt.parallel.run_jobs`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from adt.audio import read_audio, write_audio
from adt.cache import cache_key, intact, seal, stage_cache, track_file
from adt.config import SeparationSettings, Settings, data_dir
from adt.data import tables
from adt.data.tables import TracksResult
from adt.parallel import jobs, run_jobs
from adt.results import MarkdownTables, PathEntry, RunLink, StageResult
from adt.separation import real_songs, separator as separators
from adt.separation import study

#: Version of the study's training and of the stems (4: the shipped separator as a row, fine-tuning from it,
#: the choice rule of :func:`adt.separation.study.choose`, batch norm folded at inference).
VERSION = "4"


@dataclasses.dataclass(frozen=True)
class DrumStemsResult(StageResult):
    """A drum stem for every mixture (asset ``drum_stems``).

    Attributes:
        stems: track_id -> wav path (44100 Hz stereo) of its separated drums.
        model: the separator that made them: ``model`` (its description), ``key`` (the stems' cache key),
            ``procedure``, ``val_sdr_db``, ``study_key``, ``choice``, ``heard_real_songs``.
        study: the separation study (:func:`run_separation_study`).
        dir: the stems' folder.
    """

    stems: dict
    model: dict
    study: dict
    dir: str

    @classmethod
    def stand_in(cls, stems: dict, key: str = "stand-in") -> "DrumStemsResult":
        """Stems made elsewhere (or none: track_id -> None) under cache key ``key``, for a caller that needs
        no separation (benchmarks, inputs other than ``separated``)."""
        return cls(key=key, stems=dict(stems), model={"key": key}, study={}, dir="")

    def metadata(self) -> dict:
        model, study = self.model, self.study
        tables = study["tables"]
        return {"mixtures": len(self.stems), "model": str(model["model"]), "procedure": str(model["procedure"]),
                "val_sdr_db": round(float(model.get("val_sdr_db") or float("nan")), 2),
                "choice": str(study.get("choice", "")),
                "started_from_shipped": ", ".join(study.get("started_from_shipped", [])) or "none",
                "heard_real_songs": ", ".join(study.get("heard_real_songs", [])) or "none",
                "chosen_heard_real_songs": bool(model.get("heard_real_songs", False)),
                "mlflow_run": RunLink(study.get("run_id")),
                **{name: MarkdownTables(tables[part]) for name, part in (
                    ("table_2_procedures", "table2"), ("table_3_encoder", "table3"), ("real_songs", "real"),
                    ("models", "models"), ("transferable_encoder", "transfer"))},
                "path": PathEntry(self.dir)}


def run(settings: Settings, tracks: TracksResult, log: Callable[[str], None] = print) -> DrumStemsResult:
    """Stage ``drum_stems``: :func:`separate_mixtures` with the profile's separation section."""
    return separate_mixtures(tracks, settings.get_profile().separation, log)


def run_separation_study(tracks: TracksResult, separation: SeparationSettings,
                         log: Callable[[str], None] = print) -> dict:
    """The separation study on the corpus of ``tracks`` (cached): its manifest.

    Args:
        tracks: the ``tracks`` stage's result.
        separation: the profile's separation section (:meth:`StudySettings.from_section`).

    Returns:
        ``{"key", "dir", "best", "chosen": model spec (:mod:`adt.separation.separator`) with its figures,
        "choice": how it was chosen, "started_from_shipped", "heard_real_songs": model names (their real-song
        figures are development figures), "results": {name: figures (no per-track rows)}, "tables": {name:
        Markdown}}``.
    """
    settings = study.StudySettings.from_section(separation)
    keys = {d: k for d, k in sorted(tracks.dataset_keys.items()) if d in ("demo", "groove", "mdb")}
    cache = stage_cache("separation_study", VERSION, keys, dataclasses.asdict(settings))

    def compute(folder: Path) -> dict:
        table = pd.read_parquet(tracks.path)
        beats = pd.read_parquet(tracks.gt_beats)
        out = study.run_study(table, beats, settings, folder, log, songs=_real_songs(keys, log))
        results = {n: {k: v for k, v in r.items() if k not in ("per_track", "history")}
                   for n, r in out["results"].items()}
        chosen = {"name": out["best"], **results[out["best"]]}
        return {"dir": str(folder), "best": out["best"], "chosen": chosen, "choice": out["choice"],
                "started_from_shipped": out["started_from_shipped"], "heard_real_songs": out["heard_real_songs"],
                "results": results, "tables": out["tables"], "run_id": out["run_id"]}

    return cache.get_or_compute(compute)


def _real_songs(keys: dict, log) -> list[dict] | None:
    """The corpus's MDB songs with multitracks as real stems (:mod:`adt.separation.real_songs`), or None."""
    if "mdb" not in keys:
        return None

    try:
        raw = tables.fetch_raw("mdb")
        return real_songs.real_stem_songs(raw.path, data_dir() / "real_songs" / "stems")
    except FileNotFoundError as exc:
        log(f"separation study: no real songs ({exc})")
        return None


def separate_mixtures(tracks: TracksResult, separation: SeparationSettings,
                      log: Callable[[str], None] = print) -> DrumStemsResult:
    """Separate the drums of every track with a mixture (``mix_path``) with the study's chosen separator.

    Args:
        tracks: the ``tracks`` stage's result (stems are cached per track under its dataset's table key).
    """
    manifest = run_separation_study(tracks, separation, log)
    chosen = manifest["chosen"]
    separator = separators.load(chosen)
    model_key = cache_key(manifest["key"], chosen["name"])
    model_info = {"model": separator.description, "key": model_key, "procedure": chosen["procedure"],
                  "val_sdr_db": chosen.get("sdr.drums.val"), "study_key": manifest["key"],
                  "choice": manifest.get("choice", ""), "heard_real_songs": bool(chosen.get("heard_real_songs"))}
    log(f"separation: chosen {chosen['name']} "
        f"(validation drums SDR {chosen.get('sdr.drums.val', float('nan')):.2f} dB; {model_info['choice']})")
    dataset_keys = tracks.dataset_keys
    table = pd.read_parquet(tracks.path)
    out_dir = data_dir() / "drum_stems" / model_key
    mixtures = table[table.mix_path.notna()]
    stems = {tid: str(track_file(out_dir / dataset_keys[tid.split("/")[0]], tid, ".wav"))
             for tid in mixtures.track_id}
    todo = [(str(mix), stems[tid]) for tid, mix in zip(mixtures.track_id, mixtures.mix_path)
            if not intact(stems[tid])]  # missing, or not what was written (removed, with a warning naming it)
    log(f"separation: {len(todo)} of {len(stems)} mixtures to separate")
    parts = min(len(todo), 4 * jobs())  # a few jobs per process: progress, and the processes end together
    batches = [todo[k::parts] for k in range(parts)]
    run_jobs(separate_files, [dict(spec=chosen, pairs=b) for b in batches], 1, log,
             names=[f"drum stems {k + 1}/{parts} ({len(b)} mixtures)" for k, b in enumerate(batches)])
    for _, stem in todo:
        seal(stem)
    key = cache_key("stems", VERSION, model_key, sorted(stems))
    return DrumStemsResult(key=key, stems=stems, model=model_info, study=manifest, dir=str(out_dir))


def separate_files(spec: dict, pairs: list[tuple[str, str]]) -> int:
    """Write the drum estimate of each ``(mixture wav, target wav)`` of ``pairs`` (44100 Hz stereo, atomically:
    :func:`adt.audio.write_audio`) with the separator of ``spec`` (:func:`adt.separation.separator.load`); a job of
    :func:`separate_mixtures` (module-level: worker processes pickle it). Returns the number written."""
    separator = separators.load(spec)
    for mix, target in pairs:
        audio, sr = read_audio(Path(mix))
        write_audio(Path(target), separator.drums(audio, sr), separators.SAMPLE_RATE)
    return len(pairs)
