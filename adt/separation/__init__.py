"""Stage *separation*: the separation study and a drum stem for every mixture.

Asset ``drum_stems``. Modules: :mod:`~adt.separation.unet` (the interleaved multitask paper's
shared-encoder U-Net: ReLU magnitudes as the paper, soft masks a variant), :mod:`~adt.separation.procedures`
(independent, simultaneous, interleaved and interleaved-acc training; early stopping),
:mod:`~adt.separation.stem_data` (per-source databases, splits, excerpts and augmentation),
:mod:`~adt.separation.real_songs` (the 9 MDB songs' real stems and folds),
:mod:`~adt.separation.bsseval` (BSSEval v4 SDR/SIR through museval), :mod:`~adt.separation.study` (Tables 2
and 3, the real-song table, cross-validation, the Open-Unmix baselines, the chosen separator),
:mod:`~adt.separation.umx` (Open-Unmix drums: pretrained ``umxl`` when it loads, or trained here by
:mod:`~adt.separation.umx_train`),
:mod:`~adt.separation.separator` (any separator behind one interface; the shipped one),
:mod:`~adt.separation.stems` (the stage), :mod:`~adt.separation.cli` (``adt separate``).
"""
