"""Stage *features*: spectrograms and frame targets at 100 fps, segment shards, training statistics.

Asset ``features``. Modules: :mod:`~adt.features.spectrogram` (log mel, tatum paper
Sec. IV-A; log filtered, thesis Sec. 5.1.1), :mod:`~adt.features.targets` (frame targets,
target widening, infrequency weights, thesis Secs. 5.1.2, 5.2), :mod:`~adt.features.stats`
(per-bin mean/std and onset counts summed over tracks), :mod:`~adt.features.shards`
(memory-mapped 4-s segment shards and the training loader), :mod:`~adt.features.index`
(the stage, and :class:`~adt.features.index.FeatureIndex`: the typed record the model
stages read).
"""
