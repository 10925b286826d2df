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
