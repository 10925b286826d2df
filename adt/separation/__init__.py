"""Stage *separation*: the separation study and a drum stem for every mixture.

Asset ``drum_stems``. Modules: :mod:`~adt.separation.unet` (the interleaved multitask paper's
shared-encoder U-Net, soft masks), :mod:`~adt.separation.procedures` (independent, simultaneous,
interleaved and interleaved-acc training; per-source databases), :mod:`~adt.separation.bsseval`
(BSSEval v4 SDR/SIR through museval), :mod:`~adt.separation.study` (Tables 2 and 3, the Open-Unmix
baselines, the chosen separator), :mod:`~adt.separation.umx` (Open-Unmix drums: pretrained ``umxl``
when it loads, or trained here), :mod:`~adt.separation.separator` (any separator behind one
interface), :mod:`~adt.separation.stems` (the stage), :mod:`~adt.separation.cli` (``adt separate``).
"""
