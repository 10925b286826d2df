"""Training and scoring one model of the separation study (:func:`model_job`).

A shared-encoder procedure (with and without ratio masks), the transfer experiment, the shipped
separator, Open-Unmix trained here or pretrained, or the mixture as every estimate: trained, then
scored on the study's evaluation sets (:mod:`adt.separation.study_eval`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from adt.atomic import write_json
from adt.audio import write_audio
from adt.separation import procedures, separator, stem_data, umx, umx_train
from adt.separation.study_eval import drums_only, evaluate_separator, evaluate_variants, spread
from adt.separation.study_settings import MODELS, RATIO, SHARED_MODELS, SHIPPED, TRANSFER, StudySettings
from adt.separation.unet import SOURCES, UNetConfig


def model_job(name: str, settings: StudySettings, dbs, train_songs, sets, folder: Path,
               log: Callable[[str], None] = print) -> None:
    """Train and evaluate model ``name``; its result(s) to ``<folder>/<name>.computed.json`` (and
    ``<name>+ratio.computed.json`` for a shared encoder; nothing when it is left out), with ``started_at`` (when
    the job began, ``time.time()``: the model's MLflow run spans its training and evaluation)."""
    started = time.time()
    for key, result in (_train_and_evaluate(name, settings, dbs, train_songs, sets, folder, log) or {}).items():
        write_json(folder / f"{key}.computed.json", {**result, "started_at": started})


def _scored_both_ways(name: str, models: dict, sets, extra: dict, train_s: float, paths: dict, log) -> dict:
    """``{name: the paper's estimates' figures, name + RATIO: with ratio masks}``, from one network pass per track."""
    log(f"{name}: evaluating (the paper's estimates and with ratio masks)")
    metrics = evaluate_variants(lambda mix: procedures.separate_variants(models, mix), sets)
    return {name + (RATIO if ratio else ""): {**extra, **metrics[ratio], "train_s": train_s, "model_paths": paths,
                                              "ratio_masks": ratio} for ratio in (False, True)}


def shipped_start(settings: StudySettings, config: UNetConfig):
    """The shipped separator's network when ``settings.start_from_shipped`` and a model of ``config`` can start
    from it (:func:`procedures.compatible`), else None.

    Raises:
        FileNotFoundError, ValueError: the shipped separator is missing or unreadable (names it).
    """
    if not settings.start_from_shipped:
        return None
    network = separator.shipped_network()
    return network if procedures.compatible(config, network) else None


def _train_shared(name: str, settings: StudySettings, dbs, sets, folder: Path, log) -> dict:
    t0 = time.perf_counter()
    procedure, encoder, output = SHARED_MODELS[name]
    config = settings.config(encoder, output=output)
    start = shipped_start(settings, config)
    if start is not None:
        log(f"{name}: fine-tuning from the shipped separator's weights (lr {settings.fine_tune_lr:g})")
    trained = procedures.train_procedure(procedure, config, dbs, settings.train_settings(fine_tune=start is not None),
                                         log=lambda m: log(f"{name}: {m}"), start=start)
    paths = procedures.save(dataclasses.replace(trained, procedure=name), folder)
    extra = {"procedure": procedure, "encoder": encoder, "output": output, "params": trained.parameters(),
             "best_round": trained.best_round, "converged": trained.converged, "history": trained.history,
             "start": "scratch" if start is None else "shipped", "heard_real_songs": start is not None}
    return _scored_both_ways(name, trained.models, sets, extra, time.perf_counter() - t0, paths, log)


def _shipped_row(sets, log) -> dict:
    """The shipped separator as ``adt separate`` runs it (ratio masks over its decoders)."""
    sep = separator.shipped()
    network = separator.shipped_network()
    log(f"{SHIPPED}: evaluating {sep.description}")
    metrics = evaluate_separator(lambda mix: sep.separate(mix, separator.SAMPLE_RATE), sets)
    return {SHIPPED: {"procedure": SHIPPED, "encoder": "encoder", "output": network.config.output,
                      "params": sum(p.numel() for p in network.parameters()), **metrics, "train_s": 0.0,
                      "model_paths": {"shared": str(separator.shipped_path())}, "ratio_masks": True,
                      "start": "shipped", "heard_real_songs": True}}


def _train_and_evaluate(name, settings: StudySettings, dbs, train_songs, sets, folder: Path, log) -> dict | None:
    t0 = time.perf_counter()
    if name in SHARED_MODELS:
        return _train_shared(name, settings, dbs, sets, folder, log)
    if name == TRANSFER:
        return _transfer(settings, dbs, sets, folder, log)
    if name == SHIPPED:
        return _shipped_row(sets, log)
    if name == "open_unmix":
        songs = spread(sorted(train_songs, key=lambda t: t["drums"]), settings.umx_tracks)
        mixes = [_song_mix(t, folder / "umx_mixes") for t in songs]
        pairs = [(m, Path(t["drums"])) for m, t in zip(mixes, songs)]  # Open-Unmix holds them in memory
        model_path = folder / "open_unmix-drums.pt"
        umx_train.train_drums_model(pairs, model_path, steps=settings.umx_steps, seed=settings.seed,
                                    log=lambda m: log(f"open_unmix: {m}"))
        separator = umx.load_separator(model_path)
        separate = drums_only(lambda mix: umx.separate_audio(separator, mix, 44100))
        paths = {"drums": str(model_path)}
        extra = {"procedure": "open_unmix", "params": sum(p.numel() for p in separator.parameters())}
    elif name in ("umxl", "umxhq"):
        separator = umx.load_pretrained(name)
        if separator is None:
            log(f"separation study: pretrained {name} unavailable (offline?): left out")
            return None
        separate = drums_only(lambda mix: umx.separate_audio(separator, mix, 44100))
        paths, extra = {}, {"procedure": "open_unmix", "params": sum(p.numel() for p in separator.parameters())}
    elif name == "mixture":
        separate = lambda mix: {s: mix for s in SOURCES}  # noqa: E731
        paths, extra = {}, {"procedure": "mixture", "params": 0}
    else:
        raise ValueError(f"unknown separation model {name!r}; expected one of {MODELS + (TRANSFER,)}")
    train_s = time.perf_counter() - t0
    log(f"{name}: evaluating")
    metrics = evaluate_separator(separate, sets)
    return {name: {**extra, **metrics, "train_s": train_s, "model_paths": paths}}


def _song_mix(song: dict, folder: Path) -> Path:
    """A song's mixture wav: its own ``mix`` when it has one, else its stems summed into ``folder``."""
    if song.get("mix"):
        return Path(song["mix"])
    path = Path(folder) / f"{Path(song['drums']).parent.name}.wav"
    if not path.is_file():
        mix = stem_data.mixture_of(stem_data.Item({s: song[s] for s in SOURCES if song.get(s)}, ()))
        write_audio(path, mix, 44100)
    return path


def _transfer(settings: StudySettings, dbs, sets, folder: Path, log) -> dict:
    """Interleaved on drums and bass, then ``other`` on the frozen encoder (half the rounds)."""
    t0 = time.perf_counter()
    two = ("drums", "bass")
    sub = dataclasses.replace(dbs, train={s: dbs.train[s] for s in two}, val={s: dbs.val[s] for s in two})
    base = procedures.train_procedure("interleaved", settings.config(sources=two), sub, settings.train_settings(),
                                      log=lambda m: log(f"{TRANSFER} (drums, bass): {m}"))
    model = procedures.add_source(base.models["shared"], "other", dbs.train["other"], dbs.val["other"],
                                  settings.train_settings(max(1, settings.rounds // 2)),
                                  log=lambda m: log(f"{TRANSFER} (other added): {m}"))
    trained = procedures.Trained(TRANSFER, {"shared": model}, base.history, base.best_round, time.perf_counter() - t0)
    paths = procedures.save(trained, folder)
    extra = {"procedure": "interleaved", "encoder": "encoder", "params": trained.parameters()}
    return _scored_both_ways(TRANSFER, {"shared": model}, sets, extra, trained.seconds, paths, log)
