"""Stage *separation*: drum stems separated from every mixture (tatum paper Sec. IV-A).

Asset ``drum_stems``. Modules: :mod:`~adt.separation.umx` (Open-Unmix drums model:
pretrained ``umxl`` when it loads, else trained here; chunked separation; SDR),
:mod:`~adt.separation.stems` (the stage: choose or train the separator, separate
every mixture, cached per track).
"""
