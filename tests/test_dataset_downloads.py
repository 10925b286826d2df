"""Every dataset module's download path against a local HTTP server serving small
archives in its official layout (tests/layouts): full download, an interrupted
download that resumes, a corrupt archive rejected, an archive with an escaping
entry refused, a 404 — and a table build from what was downloaded."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import pkgutil
import tarfile
import zipfile

import pytest

import tests.layouts
from adt.config import get_profile
from adt.data.archives import UnsafeArchiveError
from adt.data.datasets import TRACK_COLUMNS, get_module
from adt.data.download import ChecksumError, DownloadError, fetch_all

LAYOUTS = sorted(m.name for m in pkgutil.iter_modules(tests.layouts.__path__))


def _layout(name: str) -> dict[str, bytes]:
    return importlib.import_module(f"tests.layouts.{name}").archive_files()


def _serve(server, name: str, files: dict[str, bytes]) -> list:
    """The module's remotes, re-pointed at the server with the served bytes' digests
    (request-only remotes become downloadable, so the same machinery is tested)."""
    remotes = []
    for remote in get_module(name).REMOTES:
        data = files[remote.filename]
        server.files[f"/{name}/{remote.filename}"] = data
        remotes.append(dataclasses.replace(remote, url=f"{server.base}/{name}/{remote.filename}", manual=None,
                                           sha256=(hashlib.sha256(data).hexdigest(),), md5=(),
                                           size=len(data), extracted_size=None))
    return remotes


def _small_profile():
    return dataclasses.replace(get_profile("tiny").data, tracks_per_split=1, mdb_tracks=1, max_duration_s=3.0,
                               groove_tracks={"train": 1}, demo_tracks=1)


def _with_escaping_entry(data: bytes) -> bytes:
    """The same archive plus a member ``../evil.txt``."""
    buf = io.BytesIO()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buf, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info, zin.read(info))
            zout.writestr("../evil.txt", b"x")
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as tin, tarfile.open(fileobj=buf, mode="w:gz") as tout:
            for member in tin.getmembers():
                tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
            info = tarfile.TarInfo("../evil.txt")
            info.size = 1
            tout.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("name", LAYOUTS)
def test_download_and_build(name, http_server, tmp_path):
    files = _layout(name)
    remotes = _serve(http_server, name, files)
    http_server.cuts_left, http_server.cut_after = 1, 5_000  # the first response breaks off: resumed
    raw, checksums = fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert checksums == {r.filename: r.sha256[0] for r in remotes}
    assert any(rng == "bytes=5000-" for _, rng in http_server.requests)
    assert not list((tmp_path / "downloads").glob("*.part"))
    # unchanged files: nothing fetched or extracted again
    n_requests = len(http_server.requests)
    assert fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", progress=False)[0] == raw
    assert len(http_server.requests) == n_requests

    tables = get_module(name).build(raw, tmp_path / "out", _small_profile())
    assert list(tables.tracks.columns) == TRACK_COLUMNS and len(tables.tracks) >= 1
    assert (tables.tracks.dataset == name).all()
    assert set(tables.tracks.split) <= {"train", "validation", "test"}
    assert len(tables.onsets) > 0 and set(tables.onsets.track_id) <= set(tables.tracks.track_id)


@pytest.mark.faults
@pytest.mark.parametrize("name", LAYOUTS)
def test_corrupt_archive_rejected(name, http_server, tmp_path):
    files = _layout(name)
    remotes = _serve(http_server, name, files)
    bad = remotes[0]
    data = bytearray(files[bad.filename])
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the digest no longer matches
    http_server.files[f"/{name}/{bad.filename}"] = bytes(data)
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert not (tmp_path / "downloads" / bad.filename).exists()
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


@pytest.mark.parametrize("name", LAYOUTS)
def test_escaping_entry_refused(name, http_server, tmp_path):
    files = _layout(name)
    first = get_module(name).REMOTES[0].filename
    files[first] = _with_escaping_entry(files[first])
    remotes = _serve(http_server, name, files)
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", LAYOUTS)
def test_404_leaves_nothing(name, http_server, tmp_path):
    remotes = _serve(http_server, name, _layout(name))
    http_server.files.clear()
    with pytest.raises(DownloadError, match="404"):
        fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert not any((tmp_path / "downloads").iterdir())
    assert not (tmp_path / "raw").exists()
    assert http_server.requests and len(http_server.requests) == 1  # a 404 is not retried


def test_free_disk_checked_before_download(http_server, tmp_path):
    from adt.data.download import DiskSpaceError

    files = _layout("mdb")
    remote = dataclasses.replace(_serve(http_server, "mdb", files)[0], extracted_size=10**18)  # an exabyte
    with pytest.raises(DiskSpaceError, match="needs .* GB free"):
        fetch_all([remote], tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert http_server.requests == [] and not any((tmp_path / "downloads").iterdir())
