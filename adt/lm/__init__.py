"""Stage *language_model*: tatum-level drum scores and drum-score language models (tatum paper Secs. III-A, III-C, IV-C).

Assets ``groove_scores``, ``drum_scores``, ``lm_bigram``, ``lm_gru``. Modules:
:mod:`~adt.lm.scores` (a score Y, K drums x M tatums, from onsets and tatums),
:mod:`~adt.lm.corpus` (scores of annotated tracks and of Groove MIDI files, stored per
split), :mod:`~adt.lm.bigram` (skip-type bigram LM, Eq. 3), :mod:`~adt.lm.gru` (GRU LM,
Eq. 2, Optuna-tuned), :mod:`~adt.lm.shipped` (the GRU LMs shipped in ``adt/pretrained``),
:mod:`~adt.lm.fit` (the stage: fit, score and register the LMs).
"""
