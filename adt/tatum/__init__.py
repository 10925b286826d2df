"""Stage *models* (tatum level): the frame-to-tatum CRNN with LM regularization (tatum paper Secs. III-B, III-D, IV-D).

Asset ``tatum_study`` (Table II, Fig. 3). Modules: :mod:`~adt.tatum.model` (tatum max
pooling Eq. 1, TatumCRNN), :mod:`~adt.tatum.tracks` (a track on a tatum grid, segments,
batches), :mod:`~adt.tatum.regularization` (Eqs. 4-8: tatum BCE, gumbel-sigmoid, LM
loss; loading frozen LMs), :mod:`~adt.tatum.train` (training and loss-weight tuning),
:mod:`~adt.tatum.inference` (prediction, save, load), :mod:`~adt.tatum.evaluate`
(tatum P/R/F Eq. 9, Table II), :mod:`~adt.tatum.pianoroll` (Fig. 3),
:mod:`~adt.tatum.study` (the stage).
"""
