"""Recorded drum kits from Debian packages: pinned downloads and a pure-Python ``.deb`` unpacker.

Each package is a :class:`adt.data.download.Remote` pinned to the Debian 12 (bookworm)
file by SHA-256 (the digest and size of ``apt-cache show``), fetched with the project's
download code from ``deb.debian.org`` (or copied from ``ADT_DATA_MIRROR`` / the
download folder, where a machine without access to the Debian archive can place the
``.deb`` by hand), then unpacked without dpkg: a ``.deb`` is an ``ar`` archive whose
``data.tar.xz`` is decompressed once (the standard library's :mod:`lzma`) into a plain tar beside the
target and extracted with :func:`adt.data.archives.extract` (every member checked, temp folder then
rename). :func:`fetch_packages` unpacks several packages in worker processes
(:func:`adt.parallel.run_jobs`; xz decompression is single-threaded). Licenses are those of each package's
``usr/share/doc/<package>/copyright`` (per kit for ``hydrogen-drumkits``).
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from adt.config import data_dir
from adt.data.archives import extract
from adt.data.download import DownloadError, Remote, fetch
from adt.parallel import run_jobs

DEBIAN_POOL = "http://deb.debian.org/debian/pool/main"


@dataclasses.dataclass(frozen=True)
class KitPackage:
    """A Debian package with drum samples.

    Attributes:
        name: the Debian package name.
        remote: the pinned ``.deb`` (URL, SHA-256, size).
        license: the samples' license as the package's copyright file gives it.
        root: folder inside the package that holds the kits or samples.
    """

    name: str
    remote: Remote
    license: str
    root: str


def _deb(name: str, pool: str, version: str, sha256: str, size: int, license: str, root: str) -> KitPackage:
    filename = f"{name}_{version}_all.deb"
    return KitPackage(name, Remote(filename, f"{DEBIAN_POOL}/{pool}/{filename}", (sha256,), size), license, root)


#: The drum-kit packages (bookworm); see the module docstring.
PACKAGES: dict[str, KitPackage] = {p.name: p for p in (
    _deb("hydrogen-data", "h/hydrogen", "1.2.0~beta1+dfsg-1",
         "d2cc3f281c02efb71f132bd173e95a958d3fede7c5aefcaba6547baf918cff2a", 6752260, "GPL-2+",
         "usr/share/hydrogen/data/drumkits"),
    _deb("hydrogen-drumkits", "h/hydrogen-drumkits", "2017.09.19~dfsg-1",
         "6ea3c6df9a67762e2362f946c695e619859126b19fbccf32a2e8f07dfd03b2f4", 142675622, "per kit (see KITS)",
         "usr/share/hydrogen/data/drumkits"),
    _deb("avldrums.lv2-soundfont", "a/avldrums.lv2", "0.5.2-2",
         "436813f10c950324f28cb6a71e922f153084b6ed00049cd47da3f0f055f3ffc5", 24667944, "CC-BY-SA-3.0",
         "usr/share/sounds/sf2"),
    _deb("fluid-soundfont-gm", "f/fluid-soundfont", "3.1-5.3",
         "6f531493ac4e4d9772fd96b2488ea1790af81c196135fbdd25997da0781fc60e", 119610208, "MIT",
         "usr/share/sounds/sf2"),
    _deb("musescore-general-soundfont", "m/musescore-general-soundfont", "0.2.1-1",
         "21ab87e4b15711817f84130a370bdb51003c90f3bf53e4015f3b410b9ed8c6a5", 75768132, "MIT (parts CC0/PD)",
         "usr/share/sounds/sf3"),
    _deb("sonic-pi-samples", "s/sonic-pi", "3.2.2~repack-8",
         "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d", 21882696, "CC0",
         "usr/share/sonic-pi/samples"),
    _deb("lmms-common", "l/lmms", "1.2.2+dfsg1-6",
         "7d9aa55dd05f11edc57104203ee1c350e3e41f8936ab3741da2bb1158fd46c37", 8263276, "GPL-2+",
         "usr/share/lmms/samples/drums"),
)}

AR_MAGIC = b"!<arch>\n"
#: Decompressors of a ``data.tar.<suffix>`` member (others, e.g. ``.zst``, are handed to
#: :func:`adt.data.archives.extract` as they are).
DECOMPRESSORS: dict[str, Callable[[], object]] = {
    ".xz": lzma.LZMADecompressor, ".gz": lambda: zlib.decompressobj(wbits=31), ".bz2": bz2.BZ2Decompressor}


def deb_members(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """Members of a ``.deb`` (``ar`` archive): name -> (offset, size) in bytes.

    Raises:
        DownloadError: not an ``ar`` archive, or a member runs past the end (a truncated file).
    """
    path = Path(path)
    size = path.stat().st_size
    out = {}
    with open(path, "rb") as f:
        if f.read(8) != AR_MAGIC:
            raise DownloadError(f"{path}: not a Debian package (no ar header)")
        pos = 8
        while pos + 60 <= size:
            f.seek(pos)
            header = f.read(60)
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                length = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise DownloadError(f"{path}: corrupt ar member header at byte {pos}") from None
            if pos + 60 + length > size:
                raise DownloadError(f"{path}: member {name!r} is truncated (the download is incomplete?)")
            out[name] = (pos + 60, length)
            pos += 60 + length + (length % 2)
    return out


def extract_deb(path: str | os.PathLike, target_dir: str | os.PathLike) -> Path:
    """Unpack a ``.deb``'s ``data.tar.*`` into ``target_dir`` (atomically; see the module docstring).

    The compressed member is decompressed once, streaming, into a plain ``data.tar`` in a temporary folder
    beside ``target_dir`` (its uncompressed size on disk meanwhile: 218 MiB for ``hydrogen-drumkits``):
    kept from when :func:`adt.data.archives.extract` read a tar twice (it now checks each member as it streams,
    issue 29), which for an ``.xz`` stream meant decompressing it twice (8 s of CPU each time for
    ``hydrogen-drumkits``).

    Raises:
        DownloadError: not a ``.deb``, no data member, or a corrupt or truncated member (the message
            names the file).
        adt.data.archives.UnsafeArchiveError: a member escaping the folder.
    """
    members = deb_members(path)
    data = next((m for m in members if m.startswith("data.tar")), None)
    if data is None:
        raise DownloadError(f"{path}: no data.tar member in this Debian package")
    offset, length = members[data]
    suffix = Path(data).suffix
    make = DECOMPRESSORS.get(suffix)
    Path(target_dir).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(target_dir).parent) as tmp:
        inner = Path(tmp) / (data[:-len(suffix)] if make else data)
        decompressor = make() if make else None
        with open(path, "rb") as src, open(inner, "wb") as dst:
            src.seek(offset)
            remaining = length
            while remaining:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    raise DownloadError(f"{path}: {data} is truncated")
                remaining -= len(chunk)
                if decompressor is not None:
                    try:
                        chunk = decompressor.decompress(chunk)
                    except (lzma.LZMAError, zlib.error, OSError, EOFError) as exc:  # bz2 raises OSError
                        raise DownloadError(f"{path}: {data} is corrupt ({exc})") from exc
                dst.write(chunk)
        if decompressor is not None and not decompressor.eof:
            raise DownloadError(f"{path}: {data} is truncated (its compressed stream does not end)")
        return extract(inner, target_dir)


def fetch_package(name: str, mirror: str | None = None, root: str | os.PathLike | None = None,
                  on_progress: Callable[[str, int, int | None], None] | None = None) -> Path:
    """The unpacked package ``name`` under ``<data>/kits/<name>/<version>``, fetched and unpacked once.

    Returns:
        the folder of the package's drum material (``KitPackage.root`` inside the unpacked tree).

    Raises:
        KeyError: an unknown package (the message lists the known ones).
        adt.data.download.DownloadError: the ``.deb`` could not be had (the message says where it
            was looked for and where to place it by hand), or it is corrupt.
    """
    try:
        package = PACKAGES[name]
    except KeyError:
        raise KeyError(f"unknown drum-kit package {name!r}; known: {sorted(PACKAGES)}") from None
    base = Path(root) if root is not None else data_dir()
    target = _unpacked(name, base)
    if not target.is_dir():
        try:
            deb = fetch(package.remote, base / "downloads", mirror, progress=False, on_progress=on_progress)
        except DownloadError as exc:
            raise DownloadError(f"{exc}. To place it by hand: put {package.remote.filename} (from "
                                f"{package.remote.url}, or `apt-get download {name}`) into {base / 'downloads'} "
                                "or the ADT_DATA_MIRROR folder") from exc
        extract_deb(deb, target)
    return target / package.root


def _unpacked(name: str, base: Path) -> Path:
    """The folder package ``name`` is unpacked into under the data folder ``base``."""
    return base / "kits" / name / PACKAGES[name].remote.sha256[0][:12]


def fetch_packages(names: Iterable[str], mirror: str | None = None, root: str | os.PathLike | None = None,
                   log: Callable[[str], None] = lambda msg: None) -> dict[str, Path]:
    """:func:`fetch_package` of each of ``names``: those not unpacked yet in worker processes
    (:func:`adt.parallel.run_jobs`, ``ADT_JOBS``; the largest first), so that the cores decompress
    packages side by side. Call it before workers that read the packages start (two processes
    unpacking one package would swap its folder under each other's feet).

    Returns:
        package name -> its drum material's folder (as :func:`fetch_package`).

    Raises:
        KeyError: an unknown package.
        adt.data.download.DownloadError: as :func:`fetch_package` (the first that failed).
    """
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        raise KeyError(f"unknown drum-kit package(s) {unknown}; known: {sorted(PACKAGES)}")
    base = Path(root) if root is not None else data_dir()
    todo = sorted((n for n in names if not _unpacked(n, base).is_dir()), key=lambda n: -PACKAGES[n].remote.size)
    if len(todo) > 1:
        run_jobs(fetch_package, [dict(name=n, mirror=mirror, root=str(base)) for n in todo], names=todo, log=log)
    return {n: fetch_package(n, mirror, base) for n in names}


def soundfont_in(folder: str | os.PathLike) -> Path:
    """The (first by name) ``.sf2`` file in an unpacked package folder.

    Raises:
        FileNotFoundError: none there (the message names the folder).
    """
    found = sorted(Path(folder).glob("*.sf2"))
    if not found:
        raise FileNotFoundError(f"{folder}: no .sf2 SoundFont in this package")
    return found[0]
