"""Dataset downloads: checksummed, resumable, from a mirror or the official URL.

A dataset module lists what it needs as :class:`Remote` entries. :func:`fetch` puts
one archive into a folder, taking it from (in this order) a mirror folder that holds
it, a mirror base URL, or the official URL; every file is checked against its
SHA-256 digests before it gets its final name. :func:`fetch_all` fetches a dataset's
files and unpacks them with :func:`adt.data.archives.extract` (safe extraction).

HTTP downloads use ``urllib`` only: a ``<name>.part`` file collects the bytes and a
retry (or a later run) asks for the rest with ``Range: bytes=N-``; a server that
answers 200 instead of 206 makes the download restart from zero.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from adt.atomic import atomic_dir, atomic_path, write_json
from adt.cache import cache_key
from adt.data.archives import CHUNK_BYTES, DownloadError, archive_stem, extract, is_archive

log = logging.getLogger(__name__)

#: First retry waits this long (seconds); each further retry doubles it.
BACKOFF_S = 1.0
USER_AGENT = "adt-downloader/0.1 (+python-urllib)"


@dataclass(frozen=True)
class Remote:
    """One downloadable file.

    Attributes:
        filename: name of the file in the download folder (and in a mirror).
        url: official download URL (for a ``manual`` remote: the file's page, if any).
        sha256: accepted SHA-256 hex digests (lower case): the official archive's
            and, where our mirror re-zipped it, the mirror's. Each dataset module
            says which is which.
        size: size in bytes of the official file, if known: the progress bar's
            total and the free-disk check's estimate (never checked against the file).
        md5: accepted MD5 hex digests, where the publisher gives MD5 only (Zenodo
            publishes MD5 per file). A file passes when any given digest matches.
        manual: for a dataset given out on request only: the page to request it
            from. Such a file is never downloaded; :func:`fetch` looks for it in the
            mirror folder and the download folder and otherwise raises
            :class:`ManualDownloadRequired`. A manual remote may have no digest
            (the publisher gives none): its SHA-256 is then logged, not checked.
        extracted_size: bytes the archive unpacks to, if known (free-disk check).
    """

    filename: str
    url: str
    sha256: tuple[str, ...] = ()
    size: int | None = None
    md5: tuple[str, ...] = ()
    manual: str | None = None
    extracted_size: int | None = None

    def __post_init__(self) -> None:
        if not (self.sha256 or self.md5 or self.manual):
            raise ValueError(f"{self.filename}: a Remote needs at least one SHA-256 or MD5 digest")
        if "/" in self.filename or "\\" in self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"{self.filename!r}: Remote.filename must be a plain file name")
        object.__setattr__(self, "sha256", tuple(d.lower() for d in self.sha256))
        object.__setattr__(self, "md5", tuple(d.lower() for d in self.md5))

    @property
    def verifiable(self) -> bool:
        """Whether the remote has a digest to check a file against."""
        return bool(self.sha256 or self.md5)


class ChecksumError(DownloadError):
    """A fetched file's SHA-256 matches none of the accepted digests."""


class ManualDownloadRequired(DownloadError):
    """A dataset given out on request is not in place; the message names the page to
    request it from, the files expected and the folder to put them in."""


class DiskSpaceError(DownloadError):
    """Not enough free disk space for a download and its extraction."""


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest (lower case) of a file's contents."""
    return _digests(path, md5=False)[0]


def _digests(path: str | os.PathLike, md5: bool) -> tuple[str, str | None]:
    """(SHA-256, MD5 or None) hex digests of a file, read once."""
    h, m = hashlib.sha256(), (hashlib.md5(usedforsecurity=False) if md5 else None)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
            if m is not None:
                m.update(block)
    return h.hexdigest(), (m.hexdigest() if m is not None else None)


#: suffix of the file beside a downloaded archive that remembers its digests (see :func:`_stamped_digests`)
DIGESTS_SUFFIX = ".digests.json"


def _stamped_digests(path: Path, md5: bool) -> tuple[str, str | None]:
    """:func:`_digests` of a file in the downloads folder, remembered in ``<file>.digests.json``
    with the file's size and modification time (ns): a re-run does not read a large archive
    again unless either changed (the rule rsync and DVC use to skip unchanged files)."""
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    side = path.with_name(path.name + DIGESTS_SUFFIX)
    try:
        cached = json.loads(side.read_text())
    except (OSError, ValueError):
        cached = {}
    if cached.get("stamp") == stamp and cached.get("sha256") and (not md5 or cached.get("md5")):
        return cached["sha256"], cached.get("md5") if md5 else None
    sha, md5_hex = _digests(path, md5=md5)
    write_json(side, {"stamp": stamp, "sha256": sha, "md5": md5_hex})
    return sha, md5_hex


def _matches(path: str | os.PathLike, remote: Remote, remember: bool = False) -> tuple[bool, str, str]:
    """Whether the file passes ``remote``'s digests, a description of what it has, and its SHA-256
    (``remember``: through :func:`_stamped_digests`)."""
    sha, md5 = (_stamped_digests if remember else _digests)(Path(path), md5=bool(remote.md5))
    if not remote.verifiable:
        return True, f"SHA-256 {sha} (no published digest to check)", sha
    ok = sha in remote.sha256 or (md5 is not None and md5 in remote.md5)
    return ok, f"SHA-256 {sha}" + (f", MD5 {md5}" if md5 else ""), sha


def _expected(remote: Remote) -> str:
    return ", ".join([f"SHA-256 {d}" for d in remote.sha256] + [f"MD5 {d}" for d in remote.md5])


def _verify(path: Path, remote: Remote, source: str) -> str:
    """The file's SHA-256; ChecksumError (after deleting ``path``) unless its digest is accepted."""
    ok, got, sha = _matches(path, remote)
    if not ok:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{remote.filename} from {source}: checksum mismatch: expected one of "
            f"{_expected(remote)}, got {got}; the bad file was deleted"
        )
    if not remote.verifiable:
        log.warning("%s from %s: %s", remote.filename, source, got)
    return sha


def check_free_space(folder: str | os.PathLike, need_bytes: int | None, what: str) -> None:
    """Raise :class:`DiskSpaceError` unless ``folder``'s file system has ``need_bytes`` free.

    ``need_bytes`` None (size unknown) passes. The folder (or its nearest existing
    parent) is the one probed.
    """
    if not need_bytes:
        return
    probe = Path(folder).resolve()
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need_bytes:
        raise DiskSpaceError(f"{what}: needs {need_bytes / 1e9:.2f} GB free under {folder}, "
                             f"only {free / 1e9:.2f} GB left; free space or set ADT_DATA_DIR elsewhere")


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


#: Progress callback: (file name, bytes so far, total bytes or None).
ProgressCallback = Callable[[str, int, "int | None"], None]


def fetch(remote: Remote, dest_dir: str | os.PathLike, mirror: str | None = None, retries: int = 3,
          timeout_s: float = 30, progress: bool = True, on_progress: ProgressCallback | None = None) -> Path:
    """Put ``remote`` into ``dest_dir`` with a verified checksum and return its path.

    Sources, in order: ``mirror`` as a folder holding ``remote.filename`` (copied);
    ``mirror`` as an http(s) base URL (``<mirror>/<filename>`` downloaded); otherwise
    ``remote.url``. A file already present with an accepted digest is not fetched
    again (one with a wrong digest is replaced). A ``manual`` remote is never
    downloaded: it must be in the mirror folder or already in ``dest_dir``.
    Before a download, the free space must hold the file (``remote.size``) and
    its extraction (``remote.extracted_size``).

    Args:
        retries: further attempts after a failed HTTP attempt (connection errors,
            timeouts, 5xx, truncated bodies), with exponential backoff from
            :data:`BACKOFF_S` seconds; each attempt resumes the ``.part`` file.
        timeout_s: socket timeout per connection/read, seconds.
        progress: show a tqdm progress bar on the terminal.
        on_progress: called about every 1% (and at the end) with (file name,
            bytes so far, total bytes or None), e.g. to log progress in Dagster.

    Raises:
        ManualDownloadRequired: a ``manual`` remote is not in place (the message
            says where to request it and where to put it).
        DiskSpaceError: not enough free disk space; nothing is downloaded.
        DownloadError: HTTP 4xx (404 at once, without retries) or all attempts failed.
        ChecksumError: the fetched file matches none of the accepted digests; it is
            deleted and nothing is left under the final name.
    """
    return _fetch(remote, dest_dir, mirror, retries, timeout_s, progress, on_progress)[0]


def _newer_in_mirror(src: Path | None, dest: Path) -> bool:
    """Whether the mirror folder holds another file than ``dest`` for it, modified after ``dest`` was
    made (a copy in the download folder is a snapshot of the mirror's: a request-only archive without
    digests would otherwise keep its bad copy after the mirror's was repaired; a remote with digests is
    checked by them instead)."""
    if src is None or not src.is_file() or src.resolve() == dest.resolve():
        return False
    return src.stat().st_mtime_ns > dest.stat().st_mtime_ns


def _fetch(remote: Remote, dest_dir: str | os.PathLike, mirror: str | None = None, retries: int = 3,
           timeout_s: float = 30, progress: bool = True,
           on_progress: ProgressCallback | None = None) -> tuple[Path, str]:
    """:func:`fetch`, returning (path, SHA-256 of the file) so callers need not hash it again."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.filename
    src = None if not mirror or _is_url(mirror) else Path(mirror).expanduser() / remote.filename
    if dest.is_file():
        if not remote.verifiable and _newer_in_mirror(src, dest):  # no digest tells ours is stale: the mirror's
            # copy changed after ours was made
            log.warning("%s: the mirror folder's copy is newer (replaced or repaired); copying it again", dest)
        else:
            ok, got, sha = _matches(dest, remote, remember=True)
            if ok:
                log.info("%s: present with a valid checksum, not fetched again", dest)
                return dest, sha
            if remote.manual or (src is not None and src.resolve() == dest.resolve()):  # never delete the user's
                raise ChecksumError(f"{dest}: checksum mismatch: expected one of {_expected(remote)}, got {got}; "
                                    "replace the file with an intact copy")
            log.warning("%s: present but its checksum is wrong; fetching it again", dest)
        dest.unlink()
        dest.with_name(dest.name + DIGESTS_SUFFIX).unlink(missing_ok=True)

    if src is not None:
        if src.is_file():
            log.info("%s: copying from mirror folder %s", remote.filename, src.parent)
            check_free_space(dest_dir, src.stat().st_size + (remote.extracted_size or 0), remote.filename)
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
                sha = _verify(tmp, remote, str(src))
            return dest, sha
        if not remote.manual:
            log.warning("mirror folder %s has no %s; downloading %s", mirror, remote.filename, remote.url)
        url = remote.url
    elif mirror:
        url = mirror.rstrip("/") + "/" + remote.filename
    else:
        url = remote.url
    if remote.manual:
        raise ManualDownloadRequired(
            f"{remote.filename} is given out on request only: request it at {remote.manual}, then put "
            f"{remote.filename} into {dest_dir.resolve()}" + (f" (or the mirror folder {mirror})" if src else "")
            + " and run again")
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    check_free_space(dest_dir, (remote.size - have if remote.size else 0) + (remote.extracted_size or 0)
                     or None, remote.filename)
    return _download(url, dest, remote, retries=retries, timeout_s=timeout_s, progress=progress,
                     on_progress=on_progress)


class _Retry(Exception):
    """A retryable failure of one attempt (truncated body, odd resume)."""


def _download(url: str, dest: Path, remote: Remote, retries: int, timeout_s: float, progress: bool,
              on_progress: ProgressCallback | None = None) -> tuple[Path, str]:
    """Download ``url`` into ``dest`` via ``dest.part``, resuming and retrying."""
    part = dest.with_name(dest.name + ".part")
    attempts = max(0, retries) + 1
    last_error: BaseException | None = None
    for attempt in range(attempts):
        if attempt:
            wait = BACKOFF_S * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", url, attempt, last_error, wait)
            time.sleep(wait)
        try:
            _download_once(url, part, remote, timeout_s, progress, on_progress)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.is_file() and _matches(part, remote)[0]:
                pass  # range not satisfiable because the .part is already whole
            elif exc.code == 416:
                part.unlink(missing_ok=True)  # stale .part: start over
                last_error = exc
                continue
            elif 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise DownloadError(f"{remote.filename} from {url}: HTTP {exc.code} {exc.reason} "
                                    "(not retried)") from exc
            else:
                last_error = exc
                continue
        except (_Retry, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = exc  # URLError and socket timeouts are OSErrors too
            continue
        sha = _verify(part, remote, url)
        os.replace(part, dest)
        return dest, sha
    raise DownloadError(f"{remote.filename} from {url}: download failed after {attempts} attempts: "
                        f"{last_error}") from last_error


def _download_once(url: str, part: Path, remote: Remote, timeout_s: float, progress: bool,
                   on_progress: ProgressCallback | None = None) -> None:
    """One HTTP attempt, appending to ``part``.

    Raises:
        _Retry: the body was cut short or the server resumed at the wrong byte.
        urllib.error.HTTPError, URLError, OSError, http.client.HTTPException.
    """
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.strip().isdigit() else None
        if response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retry(f"asked for bytes {offset}- but got Content-Range "
                             f"{response.headers.get('Content-Range')!r}; restarting from zero")
            mode = "ab"
        else:  # 200: the whole file (no Range sent, or the server ignored it)
            if offset:
                log.info("%s: server sent the whole file; restarting the download", url)
            offset, mode = 0, "wb"
        total = offset + length if length is not None else remote.size
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=remote.filename, disable=None if progress else True,
                                         leave=False) as bar:
            while True:
                block = response.read(CHUNK_BYTES)
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
                if on_progress is not None:
                    done = offset + received
                    step = max(CHUNK_BYTES, (total or 0) // 100)
                    if done // step != (done - len(block)) // step:
                        on_progress(remote.filename, done, total)
        if on_progress is not None:
            on_progress(remote.filename, offset + received, total)
    if length is not None and received < length:
        raise _Retry(f"connection closed after {received} of {length} bytes")


def _content_range_start(value: str | None) -> int | None:
    """First byte of ``Content-Range: bytes A-B/N``, or None if unparsable."""
    if not value or not value.strip().startswith("bytes"):
        return None
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def is_available(remote: Remote, mirror: str | None = None, timeout_s: float = 5.0,
                 downloads_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``remote`` can be had: already in ``downloads_dir``, in the mirror folder,
    or (not for a ``manual`` remote) its mirror/official URL answers a HEAD request."""
    if downloads_dir is not None and (Path(downloads_dir) / remote.filename).is_file():
        return True
    if mirror and not _is_url(mirror):
        if (Path(mirror).expanduser() / remote.filename).is_file():
            return True
    if remote.manual:
        return False
    url = mirror.rstrip("/") + "/" + remote.filename if mirror and _is_url(mirror) else remote.url
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s) as resp:
            return resp.status < 400
    except OSError:
        return False


def fetch_all(remotes: list[Remote], downloads_dir: str | os.PathLike, raw_root: str | os.PathLike,
              mirror: str | None = None, progress: bool = True,
              on_progress: ProgressCallback | None = None) -> tuple[Path, dict[str, str]]:
    """Fetch every remote of a dataset and unpack them into one folder, once.

    The folder is ``<raw_root>/<key>``, ``key`` a hash of the files' SHA-256
    digests, so new files give a new folder and an unchanged set is not unpacked
    again. One archive is extracted into the folder itself; with several files,
    each archive goes to ``<folder>/<archive name without suffix>`` and every
    other file (an index, a TFRecord) is copied in as it is. The folder appears
    only when complete (temp folder, then rename).

    Returns:
        (the folder, {file name: SHA-256}).

    Raises:
        the errors of :func:`fetch` and :func:`extract`.
    """
    fetched = [_fetch(r, downloads_dir, mirror, progress=progress, on_progress=on_progress) for r in remotes]
    files = [f for f, _ in fetched]
    checksums = {f.name: sha for f, sha in fetched}
    target = Path(raw_root) / cache_key("raw", checksums)
    if target.is_dir():
        return target, checksums
    if len(files) == 1 and is_archive(files[0]):
        extract(files[0], target)
        return target, checksums
    with atomic_dir(target) as tmp:
        for f in files:
            if is_archive(f):
                extract(f, tmp / archive_stem(f.name))
            else:
                shutil.copyfile(f, tmp / f.name)
    return target, checksums


