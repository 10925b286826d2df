"""A tiny ADTOF export, zipped as ``adt.data.datasets.adtof.ARCHIVE``.

Split folders as ``tf.data.Dataset.save`` writes them (snapshot format version 2): ``snapshot.metadata``
and ``<run_id>/<shard>.shard/00000000.snapshot`` TFRecord files whose records are serialized TensorProtos,
x (400, 84, 1) then y (400, 5) per element. ADTOF-YT has 2 train samples (in two shards, as the default
round-robin sharding spreads them), 1 validation and 1 test; an ``adtof_rgw_test`` folder (the other
subset) must be ignored. The ``dataset_spec.pb`` of a real export is left out (the reader ignores it).
Targets follow ADTOF's encoding: 1 at an onset frame, 0.5 on either side.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from adt.data.tfrecord import make_tensor, proto_field, write_records

FRAMES, BINS = 400, 84
RUN_ID = "12946478451316285153"
#: folder -> samples per shard file
FOLDERS = {"adtof_yt_train": [1, 1], "adtof_yt_val": [1], "adtof_yt_test": [1], "adtof_rgw_test": [1]}
_NAMES = {"adtof_yt_train": "yt_train", "adtof_yt_val": "yt_validation", "adtof_yt_test": "yt_test",
          "adtof_rgw_test": "rgw_test"}


def samples() -> dict[str, tuple[np.ndarray, np.ndarray, dict[int, list[int]]]]:
    """name (e.g. ``yt_train_000001``) -> (x (400, 84, 1), y (400, 5), {class column: onset frames})."""
    rng = np.random.default_rng(2021)
    out = {}
    for folder, shards in FOLDERS.items():
        for i in range(sum(shards)):
            x = (np.round(rng.random((FRAMES, BINS, 1)) * 4) / 4).astype(np.float32)  # compressible
            y = np.zeros((FRAMES, 5), dtype=np.float32)
            onsets = {}
            for col in range(5):
                frames = sorted(rng.choice(np.arange(1, FRAMES - 1, 3), size=2 + col, replace=False).tolist())
                frames[0] = 10 + 3 * col  # an early hit of every class, before any 2 s crop
                frames = sorted(set(frames))
                for f in frames:  # frames are 1 mod 3: no two hits of a class touch
                    y[f - 1, col] = y[f + 1, col] = 0.5
                    y[f, col] = 1.0
                onsets[col] = frames
            out[f"{_NAMES[folder]}_{i:06d}"] = (x, y, onsets)
    return out


def _metadata(n_elements: int) -> bytes:
    """A finalized SnapshotMetadataRecord: run id, version 2, dtypes float32 x2 (packed), count."""
    return (proto_field(2, RUN_ID.encode()) + proto_field(3, 1699520912224910) + proto_field(4, 2)
            + proto_field(5, bytes([1, 1])) + proto_field(6, n_elements) + proto_field(1000, 1))


def archive_files() -> dict[str, bytes]:
    """{``adtof_yt.zip``: zip bytes}, deterministic, well under 1 MB."""
    data = samples()
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        def add(name: str, payload: bytes) -> None:
            zf.writestr(zipfile.ZipInfo(f"export adtofv2/{name}", date_time=(2023, 11, 9, 10, 8, 32)), payload,
                        compress_type=zipfile.ZIP_DEFLATED)

        for folder, shards in FOLDERS.items():
            add(f"{folder}/snapshot.metadata", _metadata(sum(shards)))
            i = 0
            for shard, count in enumerate(shards):
                records = []
                for _ in range(count):
                    x, y, _ = data[f"{_NAMES[folder]}_{i:06d}"]
                    records += [make_tensor(x), make_tensor(y)]
                    i += 1
                path = Path(tmp) / f"{folder}-{shard}.snapshot"
                write_records(path, records)
                add(f"{folder}/{RUN_ID}/{shard:08d}.shard/00000000.snapshot", path.read_bytes())
    return {"adtof_yt.zip": buf.getvalue()}
