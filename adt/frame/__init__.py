"""Stage *models* (frame level): transcription models, their training recipe and Optuna sweeps.

Asset ``transcriber`` and ``architecture_study``. Modules: :mod:`~adt.frame.architectures`
(the tatum paper's FrameCRNN baseline, Sec. IV-D; the thesis's RNN, CNN, CRNN,
convolutional and vision transformer, ch. 3; search spaces, Tables 3.1 / 5.1),
:mod:`~adt.frame.checkpoint` (a trained transcriber as a weights-only file, and what inference needs of it:
no training code), :mod:`~adt.frame.recipe` (thesis ch. 5: losses, AdamW, clipping, plateau schedule,
early stopping, validation micro F), :mod:`~adt.frame.peaks` (madmom peak picking,
Eq. 10 rules), :mod:`~adt.frame.units` (a network's units and the network rebuilt with fewer: the
layout of trimmed networks, which training and loading need as much as trimming does),
:mod:`~adt.frame.sweep` (Optuna + MLflow) with :mod:`~adt.frame.shared_study` (workers sharing a study),
:mod:`~adt.frame.champion` (registration, the champion and challenger aliases),
:mod:`~adt.frame.reproduce` (the figure a registered version records), :mod:`~adt.frame.shipped` (the
transcribers shipped with the package),
:mod:`~adt.frame.study` (the stage: a sweep or a training per training-set
combination, the architecture study of thesis Table 6.1).
"""
