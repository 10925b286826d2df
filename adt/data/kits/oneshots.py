"""One-shot sample pools: Sonic Pi's CC0 drum samples and LMMS's drum one-shots, drawn into a kit per track.

A kit name ``pool:<package>`` renders each track with a kit drawn from that package's pool
(:func:`pool_kit`, seeded): one sample per articulation, picked at random among the files the
reviewed list (:data:`POOLS`) gives for it, so every track hears another combination of kicks,
snares, toms, hi-hats and cymbals (as the ADT_STR corpus mixes one-shots). Files are classed by
their names (kit survey of the Debian packages); the list leaves out claps, cowbells, shakers,
rolls, loops, tabla and effects. Sonic Pi's ``drum_cymbal_closed/pedal/open`` are one hi-hat
recorded in three articulations. LMMS's ``kick04.ogg`` is left out: a WAV file under an ``.ogg``
name whose ``fmt`` chunk libsndfile refuses. Licenses: Sonic Pi's samples CC0 (``bd_mehackit`` and
``sn_generic`` fall under the package's MIT), LMMS's GPL-2+.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adt.config import Settings
from adt.data.kits.hydrogen import HydrogenKit, Layer, Piece
from adt.data.kits.packages import fetch_package

#: Kit names ``pool:<package>`` render with a kit drawn from the package's pool.
POOL_PREFIX = "pool:"
_SONIC_PI_TOMS = {"tom_high": ("drum_tom_hi_hard", "drum_tom_hi_soft"),
                  "tom_mid": ("drum_tom_mid_hard", "drum_tom_mid_soft", "elec_fuzz_tom"),
                  "tom_low": ("drum_tom_lo_hard", "drum_tom_lo_soft")}
#: package -> articulation -> sample files (reviewed by name; see the module docstring).
POOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "sonic-pi-samples": {
        "kick": tuple(f"{n}.flac" for n in (
            "bd_808", "bd_ada", "bd_boom", "bd_fat", "bd_gas", "bd_haus", "bd_klub", "bd_mehackit", "bd_pure",
            "bd_sone", "bd_tek", "bd_zome", "bd_zum", "drum_bass_hard", "drum_bass_soft", "drum_heavy_kick",
            "elec_hollow_kick", "elec_soft_kick")),
        "snare": tuple(f"{n}.flac" for n in (
            "sn_dolf", "sn_dub", "sn_generic", "sn_zome", "drum_snare_hard", "drum_snare_soft", "elec_snare",
            "elec_hi_snare", "elec_mid_snare", "elec_lo_snare", "elec_filt_snare")),
        **{a: tuple(f"{n}.flac" for n in names) for a, names in _SONIC_PI_TOMS.items()},
        "hh_closed": ("drum_cymbal_closed.flac",),
        "hh_pedal": ("drum_cymbal_pedal.flac",),
        "hh_open": ("drum_cymbal_open.flac",),
        "crash": tuple(f"{n}.flac" for n in (
            "drum_cymbal_hard", "drum_cymbal_soft", "drum_splash_hard", "drum_splash_soft", "elec_cymbal")),
    },
    "lmms-common": {
        "kick": tuple(f"{n}.ogg" for n in (
            "bassdrum01", "bassdrum02", "bassdrum03", "bassdrum04", "bassdrum_acoustic01", "bassdrum_acoustic02",
            "kick01", "kick02", "kick03", "kick_distorted01", "kick_hard01", "kick_hardcore01",
            "kick_hiphop01", "kick_long01", "kick_soft01", "kick_soft02")),
        "snare": tuple(f"{n}.ogg" for n in (
            "snare01", "snare02", "snare03", "snare04", "snare05", "snare06", "snare07", "snare_acoustic01",
            "snare_electro01", "snare_harsh01", "snare_hiphop01", "snare_hiphop02", "snare_muffled01",
            "snare_muffled02", "snare_short01", "nasty_snare01")),
        "side_stick": ("snare_rim01.ogg",),
        "tom_high": ("tom_hi01.ogg", "tom02.ogg"),
        "tom_mid": ("tom_mid01.ogg", "tom01.ogg", "tom05.ogg"),
        "tom_low": ("tom_low01.ogg", "tom03.ogg", "tom04.ogg"),
        "hh_closed": tuple(f"hihat_closed0{i}.ogg" for i in range(1, 6)),
        "hh_pedal": ("hihat_foot_pedal01.ogg",),
        "hh_open": ("hihat_opened01.ogg", "hihat_opened02.ogg", "hihat_opened03.ogg"),
        "crash": ("crash01.ogg", "crash02.ogg"),
        "ride": ("ride01.ogg", "ride02.ogg"),
    },
}
LICENSES = {"sonic-pi-samples": "CC0 (bd_mehackit, sn_generic: MIT)", "lmms-common": "GPL-2+"}


def pool_kit(package: str, rng: np.random.Generator, folder: Path | None = None) -> HydrogenKit:
    """A kit drawn from ``package``'s pool: one sample per articulation (one layer, gain 1), the
    pieces named after their articulation. ``folder``: the unpacked package's sample folder
    (default: fetched with :func:`adt.data.kits.packages.fetch_package`).

    Raises:
        KeyError: a package without a pool.
        FileNotFoundError: a listed sample missing from the package (the message names it).
    """
    if package not in POOLS:
        raise KeyError(f"no one-shot pool in package {package!r}; known: {sorted(POOLS)}")
    if folder is None:
        folder = fetch_package(package, Settings.from_env().get_mirror())
    pieces = []
    for articulation, files in POOLS[package].items():
        path = Path(folder) / files[int(rng.integers(len(files)))]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: a sample of the {package} pool is missing")
        pieces.append(Piece(articulation, (Layer(path, 0.0, 1.0),)))
    return HydrogenKit(Path(folder), f"{POOL_PREFIX}{package}", "", LICENSES[package], tuple(pieces))
