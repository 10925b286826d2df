"""Safe extraction of downloaded zip and tar archives.

:func:`extract` unpacks a zip or tar (.gz/.bz2/.xz) archive into a temporary folder that
replaces the target only when complete, refusing any archive whose members or links could
land outside the target folder (:class:`UnsafeArchiveError`) or that cannot be read
(:class:`CorruptArchiveError`). :func:`is_archive` and :func:`archive_stem` tell
:func:`adt.data.download.fetch_all` which files to unpack and where.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from adt.atomic import atomic_dir, umask

#: Read/write block (bytes) of downloads and extraction.
CHUNK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be fetched (or unpacked); the message names the file or URL. Raised here and by
    :mod:`adt.data.download` (which the callers import it from)."""


#: Archive members never extracted (macOS Finder/resource-fork junk).
JUNK_NAMES = frozenset({"__MACOSX", "Icon\r", ".DS_Store"})


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the target folder (absolute path,
    ``..``, a link pointing outside, alone or through other links) or is a device/FIFO;
    nothing was extracted."""


class CorruptArchiveError(DownloadError):
    """An archive cannot be read: not a zip or tar, a bad header, or a corrupt or truncated
    compressed stream; the message names the archive and, where known, the member; nothing
    was extracted."""


def _is_junk(name: str) -> bool:
    return any(p in JUNK_NAMES for p in PurePosixPath(name).parts)


def _check_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path; UnsafeArchiveError if absolute or escaping."""
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; nothing extracted")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target folder (..); nothing extracted")
    return path


def _check_link(archive: Path, name: str, member_path: PurePosixPath, target: str, hard: bool = False) -> None:
    """Refuse a link whose target, read as text, would resolve outside the extraction root (a target
    through other links is checked on disk after extraction: :func:`_check_links_resolve`)."""
    target = target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {target!r} is absolute; nothing extracted")
    # symlinks resolve from the member's folder, hard links from the archive root
    parts = list(() if hard else member_path.parent.parts)
    for p in PurePosixPath(target).parts:
        if p == "..":
            if not parts:
                raise UnsafeArchiveError(f"{archive}: link {name!r} -> {target!r} points outside the "
                                         "target folder; nothing extracted")
            parts.pop()
        elif p != ".":
            parts.append(p)


def _check_through_links(archive: Path, path: PurePosixPath, is_link: bool, seen: set[PurePosixPath],
                         links: set[PurePosixPath]) -> None:
    """Refuse a member under a symlink, or one that takes a symlink's name (or a symlink that takes
    an earlier member's or folder's name): writes would follow the link. Called for each member in
    archive order; ``seen`` (members and their folders) and ``links`` (symlinks) are updated."""
    folders = [PurePosixPath(*path.parts[:i]) for i in range(1, len(path.parts))]
    for folder in folders:
        if folder in links:
            raise UnsafeArchiveError(f"{archive}: member {str(path)!r} lies under the link "
                                     f"{str(folder)!r}; nothing extracted")
    if path in links or (is_link and path in seen):
        raise UnsafeArchiveError(f"{archive}: member {str(path)!r} takes the name of a link, or a link "
                                 "that of another member; nothing extracted")
    seen.update(folders)
    seen.add(path)
    if is_link:
        links.add(path)


#: symlinks followed in a row before :func:`_link_escapes` calls it a loop (Linux's limit)
_MAX_LINK_HOPS = 40


def _link_escapes(root: Path, path: PurePosixPath) -> bool:
    """Whether resolving ``path`` under ``root`` on disk, following every symlink on the way, steps
    outside ``root`` at any point (even to come back in) or loops."""
    todo, done, hops = list(reversed(path.parts)), [], 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                return True
            done.pop()
            continue
        here = root.joinpath(*done, part)
        if here.is_symlink():
            hops += 1
            target = os.readlink(here).replace("\\", "/")
            if hops > _MAX_LINK_HOPS or target.startswith("/"):
                return True
            todo.extend(reversed(PurePosixPath(target).parts))  # from the link's folder: ``done``
            continue
        done.append(part)
    return False


def _check_links_resolve(archive: Path, root: Path, links: set[PurePosixPath]) -> None:
    """Refuse the archive (raise in the temporary folder, which is then removed) if a symlink extracted
    into ``root`` resolves outside it through other links: e.g. ``x/l1 -> ..`` and ``l2 -> x/l1/..``,
    each inside the folder read as text, ``l2`` outside once ``x/l1`` exists. Run once every member
    is on disk, so a link's meaning cannot change after its check."""
    for link in sorted(links):
        if _link_escapes(root, link):
            target = os.readlink(root.joinpath(*link.parts))
            raise UnsafeArchiveError(f"{archive}: link {str(link)!r} -> {target!r} points outside the target "
                                     "folder through other links (or loops); nothing extracted")


def _member_mode(mode: int, mask: int, is_dir: bool) -> int:
    """A member's permission bits as unpacked: the archive's, less the umask ``mask`` (and any
    setuid/setgid/sticky bit); the owner keeps read and write (and search, for a folder)."""
    return (mode & 0o777 & ~mask) | (0o700 if is_dir else 0o600)


#: what a decompressor raises on a corrupt or truncated stream (bz2 a plain OSError, gzip BadGzipFile)
_STREAM_ERRORS = (zlib.error, EOFError, lzma.LZMAError, zipfile.BadZipFile, OSError)


class _StreamError(Exception):
    """An error reading an archive's (decompressed) bytes, kept apart from errors writing the output."""


class _Checked:
    """A file object whose read errors are raised as :class:`_StreamError`."""

    def __init__(self, f) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except _STREAM_ERRORS as exc:
            raise _StreamError(exc) from exc

    def __enter__(self) -> _Checked:
        return self

    def __exit__(self, *exc_info) -> None:
        self._f.close()


def _corrupt(archive: Path, member: str | None, exc: BaseException, what: str) -> CorruptArchiveError:
    where = f"member {member!r}: " if member else ""
    return CorruptArchiveError(f"{archive}: {where}{what} ({exc}); nothing extracted")


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def extract(archive: str | os.PathLike, target_dir: str | os.PathLike) -> Path:
    """Unpack a zip or tar (.gz/.bz2/.xz) archive into ``target_dir`` and return it.

    An absolute path, a ``..`` escape, a link pointing outside (by its text, or on disk
    through other links once all are unpacked), a member under or in place of a link, or a
    device/FIFO member raises UnsafeArchiveError. Members are unpacked into a temporary folder
    beside ``target_dir`` that replaces ``target_dir`` (an existing one is swapped out) only
    when complete: after any error nothing is extracted. A tar is read once, as a stream
    (members are checked as they come), to the end of its compressed stream (whose checksum
    is so checked). Permissions are the members' less the umask, the owner keeping read and
    write. macOS junk (``__MACOSX/``, ``Icon\\r``, ``.DS_Store``) is skipped.

    Raises:
        UnsafeArchiveError: an unsafe member (see above).
        CorruptArchiveError: the file is not a readable zip or tar archive, or a compressed
            stream is corrupt or truncated (the message names the member where known).
    """
    archive, target_dir = Path(archive), Path(target_dir)
    if not archive.is_file():
        raise DownloadError(f"{archive}: no such archive")
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target_dir)
    try:
        is_tar = tarfile.is_tarfile(archive)
    except _STREAM_ERRORS:
        is_tar = False
    if is_tar or _tar_opener(archive) is not open:  # compressed: a corrupt stream gets its own message
        return _extract_tar(archive, target_dir)
    raise CorruptArchiveError(f"{archive}: not a zip or tar archive")


def _open_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Checked:
    try:
        return _Checked(zf.open(info))
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:  # bad header, method, encrypted
        raise _StreamError(exc) from exc


def _extract_zip(archive: Path, target_dir: Path) -> Path:
    mask, member = umask(), None  # member: the one being read, for error messages
    try:
        with zipfile.ZipFile(archive) as zf:
            members, seen, links = [], set(), set()
            for info in zf.infolist():
                path = _check_name(archive, info.filename)
                link = None
                if _zip_is_symlink(info):
                    member = info.filename
                    try:
                        with _open_zip_member(zf, info) as src:
                            link = src.read().decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise _StreamError(exc) from exc
                    _check_link(archive, info.filename, path, link)
                if not _is_junk(info.filename) and path.parts:
                    _check_through_links(archive, path, link is not None, seen, links)
                    members.append((info, path, link))
            with atomic_dir(target_dir) as tmp:
                for info, path, link in members:
                    member = info.filename
                    out = tmp.joinpath(*path.parts)
                    mode = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        if mode:
                            os.chmod(out, _member_mode(mode, mask, is_dir=True))
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    if link is not None:
                        os.symlink(link, out)
                        continue
                    with _open_zip_member(zf, info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK_BYTES)
                    if mode:
                        os.chmod(out, _member_mode(mode, mask, is_dir=False))
                member = None
                _check_links_resolve(archive, tmp, links)
    except _StreamError as exc:
        cause = exc.__cause__
        what = ("unsupported or encrypted member" if isinstance(cause, (NotImplementedError, RuntimeError))
                else "bad link target" if isinstance(cause, UnicodeDecodeError) else "corrupt compressed stream")
        raise _corrupt(archive, member, cause, what) from cause
    except zipfile.BadZipFile as exc:
        raise _corrupt(archive, member, exc, "corrupt zip archive") from exc
    return target_dir


#: leading bytes of a compressed tar, and how to open it (tarfile's own detection, stricter for bz2)
_TAR_COMPRESSION = ((b"\x1f\x8b\x08", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open),
                    (b"\x5d\x00\x00\x80", lzma.open))


def _tar_opener(archive: Path) -> Callable:
    """How to open ``archive`` for reading its tar stream: a decompressor's ``open``, or ``open``."""
    with open(archive, "rb") as f:
        head = f.read(10)
    return next((o for magic, o in _TAR_COMPRESSION if head.startswith(magic)
                 and (o is not bz2.open or head[3:4].isdigit() and head[4:10] == b"1AY&SY")), open)


def _tar_filter(mask: int) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """tarfile's ``data`` filter (it re-checks names and links on disk and refuses odd files), with
    the members' modes less the umask ``mask`` (that filter drops folders' modes and group write)."""

    def keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        filtered = tarfile.data_filter(member, dest)
        if filtered.isreg() or filtered.isdir():
            filtered = filtered.replace(mode=_member_mode(member.mode, mask, filtered.isdir()), deep=False)
        return filtered

    return keep_modes


def _extract_tar(archive: Path, target_dir: Path) -> Path:
    opener = _tar_opener(archive)
    member: str | None = None  # the one being extracted, for error messages
    seen: set[PurePosixPath] = set()
    links: set[PurePosixPath] = set()

    def checked(tf: tarfile.TarFile):
        """The members to extract, each checked as it is read (one pass: reading a compressed tar's
        member list first, as tarfile's getmembers does, decompresses it a second time)."""
        nonlocal member
        for m in tf:
            path = _check_name(archive, m.name)
            if m.issym() or m.islnk():
                _check_link(archive, m.name, path, m.linkname, hard=m.islnk())
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or FIFO; nothing extracted")
            if not _is_junk(m.name) and path.parts:
                _check_through_links(archive, path, m.issym(), seen, links)
                member = m.name
                yield m
                member = None

    try:
        with opener(archive, "rb") as raw, atomic_dir(target_dir) as tmp:
            stream = _Checked(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                tf.extractall(tmp, members=checked(tf), filter=_tar_filter(umask()))
            while stream.read(CHUNK_BYTES):  # to the end, where gzip/bz2/xz check the stream's integrity
                pass
            _check_links_resolve(archive, tmp, links)
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{archive}: unsafe member ({exc}); nothing extracted") from exc
    except _StreamError as exc:  # found reading ``member`` (read ahead: maybe in the next; a CRC: anywhere)
        found = f", found reading member {member!r}" if member else ""
        raise _corrupt(archive, None, exc.__cause__, "corrupt compressed stream" + found) from exc.__cause__
    except tarfile.TarError as exc:
        raise _corrupt(archive, member, exc, "corrupt tar archive") from exc
    return target_dir


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip or tar archive."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def archive_stem(name: str) -> str:
    """The folder name :func:`fetch_all` unpacks archive ``name`` into: the name without its archive suffix."""
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
