"""Stage *evaluation*: the zero-shot matrix (thesis ch. 7).

Asset ``zero_shot_matrix``. Module :mod:`~adt.evaluation.zero_shot`: the sweep's best
architecture trained on every training-set combination (rows) and scored on every
test set (columns) with the micro F-measure of :mod:`adt.metrics`; Markdown and heatmaps.
"""
