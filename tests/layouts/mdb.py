"""MDB Drums layout (GitHub archive ``MDBDrums-master/MDB Drums/...``): two real tracks
cut from the mirrored archive, with their drum-only audio and annotations."""

from __future__ import annotations

import io
import zipfile

from tests.conftest import MDB_PREFIX, mirror_dir

NAMES = ("MusicDelta_Punk", "MusicDelta_Britpop")


def archive_files() -> dict[str, bytes]:
    src = mirror_dir() / "mdb-drums-subset.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            if any(n + "_" in name for n in NAMES):
                zout.writestr(name, zin.read(name))
    return {"mdb-drums-subset.zip": buf.getvalue()}
