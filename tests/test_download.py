"""adt.data.download against a local HTTP server (127.0.0.1, port 0) serving archives built here."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import zipfile

import pytest

from adt.data import download
from adt.data.archives import CorruptArchiveError, UnsafeArchiveError, extract
from adt.data.download import ChecksumError, DownloadError, Remote, fetch, sha256sum


def _groove_like_zip() -> bytes:
    """A small zip in the Groove archive's layout, with macOS junk to skip."""
    rnd = random.Random(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("groove/", b"")
        zf.writestr("groove/info.csv", "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,"
                                       "audio_filename,duration,split\n")
        zf.writestr("groove/drummer1/session1/1_funk_80_beat_4-4.mid", rnd.randbytes(40_000))
        zf.writestr("groove/drummer1/Icon\r", b"")
        zf.writestr("__MACOSX/groove/._info.csv", b"junk")
    return buf.getvalue()


@pytest.fixture
def server(http_server):
    return http_server


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)


def _remote(server, data: bytes, name: str = "groove-test.zip", digest: str | None = None) -> Remote:
    server.files["/files/" + name] = data
    return Remote(name, f"{server.base}/files/{name}", (digest or hashlib.sha256(data).hexdigest(),))


def test_download_verify_extract(server, tmp_path):
    data = _groove_like_zip()
    remote = _remote(server, data)
    path = fetch(remote, tmp_path / "dl", progress=False)
    assert path == tmp_path / "dl" / remote.filename
    assert sha256sum(path) == hashlib.sha256(data).hexdigest()
    assert not list((tmp_path / "dl").glob("*.part"))
    assert server.requests == [("/files/" + remote.filename, None)]

    # present and valid: not fetched again
    assert fetch(remote, tmp_path / "dl", progress=False) == path
    assert len(server.requests) == 1
    # ... and not hashed again either: its digests are remembered with its size and mtime
    side = path.with_name(path.name + download.DIGESTS_SUFFIX)
    assert side.is_file()
    real = download._digests
    download._digests = lambda *a, **k: pytest.fail("a present, unchanged archive was read again")
    try:
        assert fetch(remote, tmp_path / "dl", progress=False) == path
    finally:
        download._digests = real
    # a changed file (other size and mtime) is hashed again: caught as corrupt, fetched anew
    path.write_bytes(b"x" * 10)
    assert fetch(remote, tmp_path / "dl", progress=False) == path
    assert sha256sum(path) == hashlib.sha256(data).hexdigest() and len(server.requests) == 2

    root = extract(path, tmp_path / "raw")
    assert (root / "groove" / "info.csv").is_file()
    assert (root / "groove" / "drummer1" / "session1" / "1_funk_80_beat_4-4.mid").stat().st_size == 40_000
    assert not (root / "__MACOSX").exists()
    assert not (root / "groove" / "drummer1" / "Icon\r").exists()
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.faults
def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = _groove_like_zip()
    remote = _remote(server, data)
    server.cuts_left, server.cut_after = 1, 10_000
    path = fetch(remote, tmp_path, retries=2, progress=False)
    assert sha256sum(path) == remote.sha256[0]
    assert server.requests == [("/files/" + remote.filename, None),
                               ("/files/" + remote.filename, "bytes=10000-")]


@pytest.mark.faults
def test_partial_file_from_earlier_run_is_resumed(server, tmp_path):
    data = _groove_like_zip()
    remote = _remote(server, data)
    (tmp_path / (remote.filename + ".part")).write_bytes(data[:777])
    path = fetch(remote, tmp_path, progress=False)
    assert path.read_bytes() == data
    assert server.requests == [("/files/" + remote.filename, "bytes=777-")]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _groove_like_zip()
    remote = _remote(server, data)
    server.support_range = False
    (tmp_path / (remote.filename + ".part")).write_bytes(b"garbage-prefix")
    path = fetch(remote, tmp_path, progress=False)
    assert path.read_bytes() == data
    assert server.requests[0][1] == "bytes=14-"


def test_checksum_mismatch_deletes_file_and_never_extracts(server, tmp_path):
    data = _groove_like_zip()
    wrong = "0" * 64
    remote = _remote(server, data, digest=wrong)
    target = tmp_path / "raw"
    with pytest.raises(ChecksumError) as err:
        extract(fetch(remote, tmp_path / "dl", progress=False), target)
    msg = str(err.value)
    assert remote.filename in msg and wrong in msg and hashlib.sha256(data).hexdigest() in msg
    assert not (tmp_path / "dl" / remote.filename).exists()
    assert not list((tmp_path / "dl").glob("*.part"))
    assert not target.exists()


def test_404_fails_at_once(server, tmp_path):
    remote = Remote("missing.zip", f"{server.base}/files/missing.zip", ("0" * 64,))
    with pytest.raises(DownloadError, match="404"):
        fetch(remote, tmp_path, retries=3, progress=False)
    assert len(server.requests) == 1
    assert not (tmp_path / "missing.zip").exists()


def test_retries_exhausted(server, tmp_path):
    data = _groove_like_zip()
    remote = _remote(server, data)
    server.support_range, server.cuts_left, server.cut_after = False, 10, 100
    with pytest.raises(DownloadError, match="3 attempts"):
        fetch(remote, tmp_path, retries=2, progress=False)
    assert len(server.requests) == 3
    assert not (tmp_path / remote.filename).exists()


def test_mirror_folder_and_mirror_url(server, tmp_path):
    data = _groove_like_zip()
    digest = hashlib.sha256(data).hexdigest()
    remote = Remote("groove-test.zip", f"{server.base}/official/groove-test.zip", (digest,))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / remote.filename).write_bytes(data)

    path = fetch(remote, tmp_path / "a", mirror=str(mirror), progress=False)
    assert path.read_bytes() == data
    assert server.requests == []  # copied, nothing downloaded

    server.files["/mirror/" + remote.filename] = data
    path = fetch(remote, tmp_path / "b", mirror=server.base + "/mirror/", progress=False)
    assert path.read_bytes() == data
    assert server.requests == [("/mirror/" + remote.filename, None)]

    (mirror / remote.filename).write_bytes(data[:-1] + b"x")  # a bad mirror copy is refused
    with pytest.raises(ChecksumError):
        fetch(remote, tmp_path / "c", mirror=str(mirror), progress=False)
    assert not (tmp_path / "c" / remote.filename).exists()


def test_a_repaired_mirror_copy_replaces_the_stale_copy_of_a_request_only_archive(tmp_path):
    """A request-only archive without digests is copied from the mirror folder; when the mirror's copy is
    replaced later (it was bad), the next fetch copies it again instead of reusing the old copy."""
    import os

    remote = Remote("enst-like.zip", "https://example.org/request", manual="https://example.org/request")
    mirror, downloads = tmp_path / "mirror", tmp_path / "downloads"
    mirror.mkdir()
    (mirror / remote.filename).write_bytes(b"truncated")
    assert fetch(remote, downloads, mirror=str(mirror), progress=False).read_bytes() == b"truncated"
    assert fetch(remote, downloads, mirror=str(mirror), progress=False).read_bytes() == b"truncated"  # reused
    good = _groove_like_zip()
    (mirror / remote.filename).write_bytes(good)
    later = (downloads / remote.filename).stat().st_mtime_ns + 10**9
    os.utime(mirror / remote.filename, ns=(later, later))
    assert fetch(remote, downloads, mirror=str(mirror), progress=False).read_bytes() == good
    assert fetch(remote, downloads, mirror=str(mirror), progress=False).read_bytes() == good  # now reused again


def _zip_with(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("MDBDrums-master/README.md", b"ok")
        zf.writestr(name, b"evil")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../evil.txt", "MDBDrums-master/../../evil.txt", "/tmp/evil-abs.txt"])
def test_unsafe_zip_extracts_nothing(tmp_path, name):
    archive = tmp_path / "dl" / "bad.zip"
    archive.parent.mkdir()
    archive.write_bytes(_zip_with(name))
    target = tmp_path / "out" / "raw"
    with pytest.raises(UnsafeArchiveError, match="evil"):
        extract(archive, target)
    assert not target.exists()
    assert not list(tmp_path.rglob("evil*"))
    assert not list(tmp_path.rglob(".tmp-*"))  # no half-extracted folder left behind


def _tar_with_link(link_target: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg/data.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
        link = tarfile.TarInfo("pkg/link")
        link.type, link.linkname = tarfile.SYMTYPE, link_target
        tf.addfile(link)
    return buf.getvalue()


def test_tar_symlink_outside_is_refused(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar_with_link("../../outside.txt"))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(archive, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_zip_symlink_outside_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pkg/data.txt", b"ok")
        link = zipfile.ZipInfo("pkg/link")
        link.create_system, link.external_attr = 3, (0o120777 << 16)  # a Unix symlink
        zf.writestr(link, "../../outside.txt")
    archive = tmp_path / "bad.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(archive, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_member_under_a_symlinked_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("pkg/up")
        link.type, link.linkname = tarfile.SYMTYPE, "."
        tf.addfile(link)
        info = tarfile.TarInfo("pkg/up/x.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    archive = tmp_path / "bad.tar"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="under the link"):
        extract(archive, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_tar_gz_extracts_with_inside_symlink(tmp_path):
    archive = tmp_path / "good.tar.gz"
    archive.write_bytes(_tar_with_link("data.txt"))
    root = extract(archive, tmp_path / "raw")
    assert (root / "pkg" / "data.txt").read_text() == "ok"
    assert (root / "pkg" / "link").is_symlink() and (root / "pkg" / "link").read_text() == "ok"


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"not an archive")
    with pytest.raises(DownloadError, match="not a zip or tar"):
        extract(bogus, tmp_path / "raw")


def test_remote_needs_a_digest():
    with pytest.raises(ValueError):
        Remote("a.zip", "https://example.org/a.zip", ())
    assert Remote("a.zip", "u", ("ABC",)).sha256 == ("abc",)


def _refused(archive, error, *patterns):
    """extract(archive) raises ``error`` naming the archive (and ``patterns``), leaving nothing behind."""
    import re

    target = archive.parent / "out" / "raw"
    with pytest.raises(error, match=re.escape(str(archive))) as err:
        extract(archive, target)
    for pattern in patterns:
        assert pattern in str(err.value), str(err.value)
    assert not target.exists()
    assert not list(target.parent.glob(".tmp-*")) and not list(target.parent.glob(".old-*"))
    return str(err.value)


def _symlink_zipinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, (0o120777 << 16)  # a Unix symlink
    return info


@pytest.mark.faults
@pytest.mark.parametrize("l1_first", [True, False], ids=["l1-first", "l2-first"])
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_chain_of_links_pointing_outside_is_refused(tmp_path, kind, l1_first):
    """``x/l1 -> ..`` and ``l2 -> x/l1/..``: each inside the folder by its text, ``l2`` outside once
    ``x/l1`` exists (in either order); refused whole, nothing extracted."""
    links = [("x/l1", ".."), ("l2", "x/l1/..")]
    if not l1_first:
        links.reverse()
    archive = tmp_path / f"chain.{kind}"
    if kind == "tar":
        with tarfile.open(archive, "w") as tf:
            info = tarfile.TarInfo("x/data.txt")
            info.size = 2
            tf.addfile(info, io.BytesIO(b"ok"))
            for name, target in links:
                link = tarfile.TarInfo(name)
                link.type, link.linkname = tarfile.SYMTYPE, target
                tf.addfile(link)
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("x/data.txt", b"ok")
            for name, target in links:
                zf.writestr(_symlink_zipinfo(name), target)
    _refused(archive, UnsafeArchiveError, "outside")


@pytest.mark.faults
def test_a_zip_member_written_in_place_of_a_link_is_refused(tmp_path):
    """A link inside by its text and a later member of the same name: writing it would follow the link."""
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(_symlink_zipinfo("pkg/link"), "data.txt")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("pkg/link", b"evil")
    _refused(archive, UnsafeArchiveError, "takes the name of a link")


def _compressible(n: int) -> bytes:
    rnd = random.Random(0)
    words = [bytes(rnd.choices(b"abcdefgh", k=rnd.randint(2, 9))) for _ in range(300)]
    return b" ".join(rnd.choices(words, k=n // 5))[:n]


@pytest.mark.faults
@pytest.mark.parametrize("fault", ["flipped", "truncated"])
@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_a_corrupt_compressed_tar_is_the_modules_error(tmp_path, compression, fault):
    """Bytes flipped in the middle of the compressed body (caught by the decompressor or, where the
    stream still decodes, by its checksum at the end: read to the end), or the stream cut short."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tf:
        for name, size in (("a/readme.txt", 100), ("a/b.wav", 400_000)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(_compressible(size)))
    data = bytearray(buf.getvalue())
    if fault == "flipped":
        for i in range(8):
            data[len(data) // 2 + i] ^= 0xFF  # inside the compressed stream, in a/b.wav's data
    else:
        del data[len(data) * 3 // 4:]
    archive = tmp_path / f"x.tar.{compression}"
    archive.write_bytes(bytes(data))
    _refused(archive, CorruptArchiveError, "corrupt")


@pytest.mark.faults
def test_a_corrupt_zip_deflate_stream_is_the_modules_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/readme.txt", b"ok")
        zf.writestr("a/b.wav", _compressible(400_000))
        info = zf.getinfo("a/b.wav")
    data = bytearray(buf.getvalue())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(8):
        data[start + info.compress_size // 2 + i] ^= 0xFF
    archive = tmp_path / "x.zip"
    archive.write_bytes(bytes(data))
    _refused(archive, CorruptArchiveError, "member 'a/b.wav'", "corrupt compressed stream")


@pytest.mark.faults
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask-022", "umask-002"])
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_member_modes_are_masked_by_the_umask(tmp_path, kind, umask):
    """A 0777 member (file or folder) gets 0777 less the umask, as a plain open/mkdir would: never
    world-writable under a usual umask; the owner can always read and write."""
    import os
    import stat

    archive = tmp_path / f"modes.{kind}"
    if kind == "tar":
        with tarfile.open(archive, "w:gz") as tf:
            for name, mode, kind_ in (("pkg", 0o777, tarfile.DIRTYPE), ("pkg/run.sh", 0o777, tarfile.REGTYPE),
                                      ("pkg/ro.txt", 0o444, tarfile.REGTYPE)):
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.size = kind_, mode, 0
                tf.addfile(info, io.BytesIO(b""))
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for name, mode in (("pkg/", 0o40777), ("pkg/run.sh", 0o100777), ("pkg/ro.txt", 0o100444)):
                info = zipfile.ZipInfo(name)
                info.create_system, info.external_attr = 3, mode << 16
                zf.writestr(info, b"")
    old = os.umask(umask)
    try:
        root = extract(archive, tmp_path / "raw")
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE((root / name).stat().st_mode) for name in ("pkg", "pkg/run.sh", "pkg/ro.txt")}
    assert modes == {"pkg": 0o777 & ~umask, "pkg/run.sh": 0o777 & ~umask, "pkg/ro.txt": 0o644}, \
        {k: oct(v) for k, v in modes.items()}
    assert not any(mode & 0o002 for mode in modes.values())
