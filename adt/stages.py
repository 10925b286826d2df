"""The stages chained in plain Python, without Dagster: for notebooks and benchmarks.

The Dagster assets (``pipelines/``) call the same stage functions with the same inputs,
so every result here is the cached one of ``make demo`` (same ``ADT_DATA_DIR``) and the
other way round; a call that finds everything cached recomputes nothing.

    >>> from adt.config import Settings
    >>> out = run_stages(Settings.from_env(), until="features")   # doctest: +SKIP
    >>> out["features"].items(["mdb"], "test")                      # doctest: +SKIP

Stage names are the asset names, in graph order: :data:`STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adt.config import Settings

#: Stage (asset) names in the order they run.
STAGES = ("dataset_tables", "tracks", "drum_stems", "beats", "tatums", "groove_scores", "drum_scores", "lm_bigram",
          "lm_gru", "features", "transcriber", "trimmed_transcriber", "zero_shot_matrix", "tatum_study")
#: The stages each stage reads (the asset graph's edges).
INPUTS: dict[str, tuple[str, ...]] = {
    "dataset_tables": (), "tracks": ("dataset_tables",), "drum_stems": ("tracks",), "beats": ("tracks", "drum_stems"),
    "tatums": ("tracks", "beats"), "groove_scores": (), "drum_scores": ("tracks", "tatums", "groove_scores"),
    "lm_bigram": ("drum_scores",), "lm_gru": ("drum_scores",), "features": ("tracks", "drum_stems"),
    "transcriber": ("features",), "trimmed_transcriber": ("features", "transcriber"),
    "zero_shot_matrix": ("features", "transcriber"),
    "tatum_study": ("features", "tatums", "lm_bigram", "lm_gru", "transcriber"),
}


def needed(until: str) -> list[str]:
    """``until`` and every stage upstream of it, in :data:`STAGES` order."""
    todo, stack = set(), [until]
    while stack:
        stage = stack.pop()
        if stage not in todo:
            todo.add(stage)
            stack += INPUTS[stage]
    return [s for s in STAGES if s in todo]


def run_stages(settings: Settings, until: str = "tatum_study", datasets: Sequence[str] | None = None,
               log: Callable[[str], None] = print) -> dict:
    """Run (or find cached) ``until`` and every stage upstream of it (:func:`needed`).

    Args:
        settings: the run configuration (profile, mirror, feature type, ...).
        until: the last stage (:data:`STAGES`).
        datasets: datasets to ingest (default: every one that can be had,
            :func:`adt.data.tables.available_datasets`).

    Returns:
        stage name -> its value (as the asset's), plus ``onsets`` and ``raw`` (dataset -> raw info).

    Raises:
        ValueError: an unknown stage; the errors of the stages.
    """
    from adt.data import tables

    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; choose one of {list(STAGES)}")
    todo = needed(until)
    settings.validate()
    profile = settings.get_profile()
    out: dict = {"raw": {}, "dataset_tables": {}}
    for name in datasets or tables.available_datasets(settings.get_mirror()):
        out["raw"][name] = tables.fetch_raw(name, profile, settings.get_mirror())
        out["dataset_tables"][name] = tables.build_dataset_tables(out["raw"][name], profile, log)
    for stage in todo:
        if stage != "dataset_tables":  # done above, with the raw datasets
            out.update(_run(stage, out, settings, log))
    return out


def _run(stage: str, out: dict, settings: Settings, log: Callable[[str], None]) -> dict:
    import pandas as pd

    from adt.metrics import reference_onsets

    profile = settings.get_profile()
    if stage == "tracks":
        from adt.data.tables import unify_tables

        tracks = unify_tables(out["dataset_tables"], profile, log)
        return {"tracks": tracks, "onsets": {**tracks, "path": tracks["onsets_path"]}}
    if stage == "drum_stems":
        from adt.separation.stems import separate_mixtures

        return {stage: separate_mixtures(out["tracks"], profile, log)}
    if stage == "beats":
        from adt.rhythm.beats import beat_table

        return {stage: beat_table(out["tracks"], out["drum_stems"], settings.beat_input, log)}
    if stage == "tatums":
        from adt.rhythm.tatums import build_tatums

        return {stage: build_tatums(out["beats"], out["tracks"], settings.tatum_subdivisions)}
    if stage == "groove_scores":
        from adt.lm.corpus import build_groove_scores

        return {stage: build_groove_scores(out["raw"].get("groove"), settings.tatum_subdivisions,
                                           profile.lm_corpus_limit)}
    if stage == "drum_scores":
        from adt.lm.corpus import build_drum_scores

        return {stage: build_drum_scores(out["tracks"], out["onsets"], out["tatums"], out["groove_scores"])}
    if stage == "lm_bigram":
        from adt.lm.fit import fit_bigram

        return {stage: fit_bigram(out["drum_scores"])}
    if stage == "lm_gru":
        from adt.lm.fit import fit_gru

        return {stage: fit_gru(out["drum_scores"], profile, settings.optuna_storage or None, log)}
    if stage == "features":
        from adt.features.index import build_features

        return {stage: build_features(out["tracks"], out["onsets"], out["drum_stems"], settings.feature_type,
                                      settings.target_widening, profile.train_combinations, log,
                                      profile.transcriber_input)}
    refs = reference_onsets(pd.read_parquet(out["onsets"]["path"]))
    if stage == "transcriber":
        from adt.frame.study import transcriber_sweep

        return {stage: transcriber_sweep(out["features"], refs, profile, settings.loss_weighting,
                                         settings.optuna_storage or None, log)}
    if stage == "trimmed_transcriber":
        from adt.trimming.study import trimming_study

        return {stage: trimming_study(out["features"], refs, out["transcriber"], profile, settings.loss_weighting, log)}
    if stage == "zero_shot_matrix":
        from adt.evaluation.zero_shot import zero_shot_matrix

        return {stage: zero_shot_matrix(out["features"], refs, out["transcriber"], profile, settings.loss_weighting,
                                        log, tracks_path=f"{out['onsets']['dir']}/tracks.parquet")}
    from adt.tatum.study import tatum_study

    return {stage: tatum_study(out["features"], out["tatums"], out["onsets"], out["lm_bigram"], out["lm_gru"],
                               out["transcriber"], profile, log)}
