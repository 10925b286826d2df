"""Shared fixtures: the real-data mirror (../shared/datasets) and small extracts of it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from tests.http_server import serve

MDB_PREFIX = "MDBDrums-master/MDB Drums/"


def mirror_dir() -> Path:
    env = os.environ.get("ADT_DATA_MIRROR")
    if env and Path(env).is_dir():
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """``item.failed`` after a failed test body (the browser tests save a screenshot then)."""
    outcome = yield
    if outcome.get_result().when == "call" and outcome.get_result().failed:
        item.failed = True


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    path = mirror_dir()
    if not (path / "mdb-drums-subset.zip").is_file():
        pytest.fail(f"the real-data mirror is missing: {path} (set ADT_DATA_MIRROR)")
    return path


@pytest.fixture(scope="session")
def mdb_track(shared_datasets, tmp_path_factory) -> dict:
    """One real MDB Drums drum-only recording with its class annotation: paths and reference onsets."""
    out = tmp_path_factory.mktemp("mdb")
    name = "MusicDelta_80sRock"
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        wav = out / f"{name}_Drum.wav"
        wav.write_bytes(z.read(f"{MDB_PREFIX}audio/drum_only/{name}_Drum.wav"))
        ann = out / f"{name}_class.txt"
        ann.write_bytes(z.read(f"{MDB_PREFIX}annotations/class/{name}_class.txt"))
    return {"wav": wav, "annotation": ann, "name": name}


@pytest.fixture
def http_server():
    """A local HTTP server (tests/http_server.py): set ``files["/x.zip"] = bytes``;
    ``base`` is its URL. Download retries wait no time while it runs."""
    from adt.data import download

    saved, download.BACKOFF_S = download.BACKOFF_S, 0.0
    with serve() as srv:
        yield srv
    download.BACKOFF_S = saved


#: MDB class labels -> the 5 drum classes (the annotation files' labels).
MDB_CLASSES = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}


def mdb_excerpt(mdb_track: dict, root: Path, seconds: int):
    """The first ``seconds`` of the real MDB track as log-mel features, frame targets and one shard folder
    (``root/shards``): ``((x path, y path), reference onsets per class before ``seconds``)``."""
    import numpy as np

    from adt.atomic import save_array
    from adt.audio import read_audio
    from adt.features.shards import write_shards
    from adt.features.spectrogram import log_mel
    from adt.features.targets import frame_targets

    audio, sr = read_audio(mdb_track["wav"], mono=True)
    x = log_mel(audio[: seconds * sr], sr)
    rows = [line.split() for line in mdb_track["annotation"].read_text().splitlines() if line.strip()]
    rows = [(float(t), MDB_CLASSES[c]) for t, c in rows if c in MDB_CLASSES]
    y = frame_targets(np.array([t for t, _ in rows]), np.array([c for _, c in rows]), len(x))
    item = (save_array(root / "t.x.npy", x), save_array(root / "t.y.npy", y))
    write_shards([item], root / "shards")
    return item, {c: np.array([t for t, d in rows if d == c and t < seconds]) for c in MDB_CLASSES.values()}
