"""Stage *ingest*: datasets in their official layout, unified into Parquet tables.

Assets ``raw_dataset`` and ``dataset_tables`` (partitioned by dataset), ``tracks`` and
``onsets``. Modules: :mod:`~adt.data.download` (resumable, checksum-verified downloads),
:mod:`~adt.data.archives` (safe extraction), :mod:`~adt.data.datasets` (one module per dataset, the table
contract and schemas), :mod:`~adt.data.render` (General MIDI rendering with a
soundfont), :mod:`~adt.data.corpus` (one rendered track: drums on a recorded kit, effects from
:mod:`~adt.data.effects`, an accompaniment from :mod:`~adt.data.accompaniment`, as stems),
:mod:`~adt.data.renders` (a corpus's renders in worker processes),
:mod:`~adt.data.kits` (the recorded kits and their catalogue, asset ``kit_catalogue``),
:mod:`~adt.data.tfrecord` (ADTOF-YT's TFRecord shards without TensorFlow),
:mod:`~adt.data.tables` (the stage: fetch or generate a raw dataset, build its tables,
concatenate them). Source: thesis (Fosse 2025) ch. 4 for the datasets and splits.
"""
