"""The weights shipped with the package (weights only, at most 10 MB each) and their SHA-256, kept here in code.

Every loader of a file in this folder verifies it first (:func:`verify`: the transcribers through
:func:`adt.frame.checkpoint.load_model`, the GRU LMs through :func:`adt.lm.gru.load`, the separator through
:func:`adt.separation.procedures.load`), so flipped, truncated or replaced weights are a clear error
(:class:`ShippedWeightsError`; ``adt transcribe`` and ``adt separate`` exit 2) and never a different
transcription. Each model card (``<name>.md``) repeats its file's digest; a test holds the two equal. An export
script that writes new weights (``scripts/export_*.py``) prints the digest to put in :data:`SHA256`.
"""

from __future__ import annotations

import os
from pathlib import Path

from adt.data.download import sha256sum

#: This folder: the shipped weights and their model cards.
DIR = Path(__file__).resolve().parent

#: File name -> hex SHA-256 of the shipped weights (each model card states the same digest).
SHA256 = {
    "frame_crnn_standard.pt": "69251375187edcdb2e128a60e8c90fe40b9f04dad7abfdda59c36822b52d1a5a",
    "frame_crnn_lite.pt": "b4a98194c2b64854eb33e9be52cab3c08e652a95e6eed3a3a8a86904b028faaf",
    "frame_crnn_renders.pt": "fc079cfa03e35608860ba64e6cefc2ac987f696eb2d0fc3a5f884706b0fc12fe",
    "gru_lm_groove.pt": "dd67421db443881bedd485da393c26731b192edb41e04dc450191823071190c1",
    "gru_lm_groove_k3.pt": "1b7f062ff44e6ecaf0620b5239929a0ac4b23ea274e7e43225538f1ec2d216dc",
    "separator_standard.pt": "0149e27c56370ab62e50fa60d24e980d2dda506925134cde97a26bde639bc853",
}

#: (path, size, mtime_ns) of files already verified in this process: a file is hashed once per process.
_verified: set[tuple[str, int, int]] = set()


class ShippedWeightsError(ValueError):
    """A shipped weights file whose SHA-256 is not the one kept in :data:`SHA256` (corrupt, truncated or
    replaced), or a file in this folder that has no digest there."""


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file of this folder (after resolving links)."""
    return Path(path).resolve().parent == DIR


def verify(path: str | os.PathLike, shipped_as: str | None = None) -> Path:
    """``path`` unchanged after checking, when it is a file of this folder, its SHA-256 against :data:`SHA256`;
    other files pass unchecked (a checkpoint of one's own, a registered model: MLflow keeps their digests),
    unless ``shipped_as`` names the shipped file they must equal (a copy elsewhere, e.g. in a test).

    Raises:
        FileNotFoundError: no such file.
        ShippedWeightsError: the digest differs (both given, the file named), or the folder's file has none.
    """
    path = Path(path)
    if shipped_as is None and not is_shipped(path):
        return path
    st = path.stat()
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if stamp in _verified:
        return path
    expected = SHA256.get(shipped_as or path.name)
    if expected is None:
        raise ShippedWeightsError(f"{path}: not one of the shipped weights ({', '.join(sorted(SHA256))}); "
                                  "nothing in adt/pretrained is loaded without its SHA-256 in adt.pretrained.SHA256")
    actual = sha256sum(path)
    if actual != expected:
        raise ShippedWeightsError(f"{path}: SHA-256 {actual} differs from the shipped {expected} "
                                  f"({st.st_size} bytes; corrupt, truncated or replaced): reinstall the package")
    _verified.add(stamp)
    return path
