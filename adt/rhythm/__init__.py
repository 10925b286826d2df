"""Stage *rhythm*: beats, tatums and the quantization statistics (tatum paper Secs. III-A, IV-B, Table I).

Assets ``beats``, ``tatums``, ``quantization_stats`` (+ a check per dataset).
Modules: :mod:`~adt.rhythm.beats` (madmom beat and downbeat tracking, mir_eval
scores), :mod:`~adt.rhythm.tatums` (the one tatum grid: N tatums per beat over the
whole track, used by the pipeline and by ``adt transcribe``),
:mod:`~adt.rhythm.quantization` (conflict / far per onset, Table I).
"""
