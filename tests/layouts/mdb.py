"""MDB Drums layout (GitHub archive ``MDBDrums-master/MDB Drums/...``): two real tracks
cut from the mirrored archives, with their drum-only audio and annotations, and the
multitracks (METADATA and RAW folder) of one of them (``MusicDelta_Punk``; ``Britpop``
has none), plus the METADATA of a song without a RAW folder (ignored, as in the mirror)."""

from __future__ import annotations

import io
import zipfile

from tests.conftest import MDB_PREFIX, mirror_dir

NAMES = ("MusicDelta_Punk", "MusicDelta_Britpop")
#: The songs whose multitracks are in the fixture, and a METADATA-only one.
MULTITRACK_NAMES = ("MusicDelta_Punk",)
METADATA_ONLY = "MusicDelta_Disco"


def _cut(src: str, keep, compression: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(mirror_dir() / src) as zin, zipfile.ZipFile(buf, "w", compression) as zout:
        for name in zin.namelist():
            if keep(name):
                zout.writestr(name, zin.read(name))
    return buf.getvalue()


def archive_files() -> dict[str, bytes]:
    multitracks = f"{MDB_PREFIX}audio/multi-tracks/"
    return {
        "mdb-drums-subset.zip": _cut("mdb-drums-subset.zip", lambda n: any(s + "_" in n for s in NAMES),
                                     zipfile.ZIP_DEFLATED),
        # stored, not deflated: WAV barely compresses and the fixture is built per test
        "mdb-drums-multitracks.zip": _cut(
            "mdb-drums-multitracks.zip",
            lambda n: any(n.startswith(f"{multitracks}{s}/") for s in MULTITRACK_NAMES)
            or n == f"{multitracks}{METADATA_ONLY}/{METADATA_ONLY}_METADATA.yaml",
            zipfile.ZIP_STORED),
    }
