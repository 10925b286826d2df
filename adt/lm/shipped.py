"""The GRU drum-score LMs shipped with the package (``adt/pretrained/``; tatum paper Eq. 2, 3 x 64).

:data:`SHIPPED_LM` ``.pt`` (K = 5: BD SD TT HH CY) and ``_k3.pt`` (K = 3: BD SD HH) were trained by
``scripts/export_lm.py`` on the Groove MIDI Dataset's official train split (CC BY 4.0), the epoch chosen on its
validation split. Their SHA-256 is kept in code (:data:`adt.pretrained.SHA256`; the model card
``gru_lm_groove.md`` repeats it); :func:`shipped_lm` checks it before loading.
"""

from __future__ import annotations

import os
from pathlib import Path

from adt import PRETRAINED_DIR
from adt.data.download import sha256sum
from adt.lm import gru
from adt.pretrained import SHA256, verify

#: Stem of the shipped files: ``<stem>.pt`` (K = 5), ``<stem>_k3.pt`` (K = 3), model card ``<stem>.md``.
SHIPPED_LM = "gru_lm_groove"


def shipped_lm_path(k: int = 5, directory: str | os.PathLike | None = None) -> Path:
    """The shipped weights file of the K-drum LM (it may be missing in a source checkout).

    Raises:
        ValueError: k not 3 or 5.
    """
    if k not in (3, 5):
        raise ValueError(f"the shipped GRU LMs have K = 5 or 3 drums, got k={k}")
    return Path(directory or PRETRAINED_DIR) / (f"{SHIPPED_LM}.pt" if k == 5 else f"{SHIPPED_LM}_k3.pt")


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex, lower case) of a file's bytes (:func:`adt.data.download.sha256sum`)."""
    return sha256sum(path)


def stated_sha256(k: int = 5, directory: str | os.PathLike | None = None) -> str:
    """The SHA-256 the package ships for the K-drum LM's file (:data:`adt.pretrained.SHA256`; its card repeats it)."""
    return SHA256[shipped_lm_path(k, directory).name]


def describe(k: int = 5, directory: str | os.PathLike | None = None) -> str:
    """``"shipped adt/pretrained/gru_lm_groove.pt (sha256 <hex>)"``: what a manifest records as a starting point
    (the full path when ``directory`` is given)."""
    path = shipped_lm_path(k, directory)
    where = path if directory is not None else f"adt/pretrained/{path.name}"
    return f"shipped {where} (sha256 {stated_sha256(k, directory)})"


def shipped_lm(k: int = 5, directory: str | os.PathLike | None = None):
    """The shipped K-drum GRU LM (:class:`adt.lm.gru.GRUDrumLM`, eval mode, CPU), after checking the file's
    SHA-256 against the one kept in code (:data:`adt.pretrained.SHA256`).

    Args:
        k: 5 (BD SD TT HH CY) or 3 (BD SD HH).
        directory: where the files are (default ``adt/pretrained``; tests pass a copy).

    Returns:
        the model: scores (batch, K, M tatums) -> log-probabilities (batch, M, 2^K) in nats (Eq. 2).

    Raises:
        FileNotFoundError: the weights are missing (named).
        ValueError: k not 3 or 5; or it is not a K-drum GRU LM checkpoint.
        adt.pretrained.ShippedWeightsError: the file's SHA-256 differs from the shipped one (corrupt, truncated or
            replaced: named, both digests given).
    """
    path = shipped_lm_path(k, directory)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped GRU LM (K = {k}) is missing (reinstall the package)")
    verify(path, shipped_as=path.name)  # also a copy outside adt/pretrained (tests)
    try:
        model = gru.load(path)
    except (RuntimeError, KeyError, TypeError) as exc:  # torch: a checksum-valid file of the wrong kind
        raise ValueError(f"{path}: not a GRU LM checkpoint ({exc})") from exc
    if model.k != k:
        raise ValueError(f"{path}: a K = {model.k} LM where K = {k} was expected")
    return model
