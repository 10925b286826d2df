"""Drum kits inside SoundFonts: AVL Drumkits (two recorded kits) and FluidR3's GM drum presets.

A :class:`SoundFontKit` names a preset of an ``.sf2`` file of a Debian package
(:mod:`adt.data.kits.packages`) and, where its keys do not follow the General MIDI drum map,
the reviewed key of each articulation (AVL Drumkits: 41 is the floor tom, 45 the rack tom,
46 the semi-open hi-hat, and 48/50 a hi-hat swish and a crash choke where GM has toms).
Rendering remaps each drum note to the kit's key for its articulation
(:data:`adt.data.kits.mapping.NOTE_ARTICULATION`, with :data:`~adt.data.kits.mapping.FALLBACK`)
and plays it through :func:`adt.data.render.render_midi` (tinysoundfont: the SoundFont's own
velocity layers and exclusive classes).

:func:`preset_keys` reads a preset's key zones straight from the SoundFont's ``pdta`` chunk
(SoundFont 2.04 spec, sections 7.2-7.10): per key the number of velocity layers and the sample
rate, for the catalogue. MuseScore General (``.sf3``: Ogg-compressed samples) is left out:
tinysoundfont cannot decode it, and its drums are mono copies of FluidR3's.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Mapping
from pathlib import Path

import pretty_midi

from adt.config import Settings
from adt.data.kits.mapping import ARTICULATIONS, FALLBACK, NOTE_ARTICULATION
from adt.data.kits.packages import fetch_package
from adt.data.render import render_midi

#: Kit names ``sf:<kit id>`` render the drums with a SoundFont kit of :data:`SOUNDFONT_KITS`.
SOUNDFONT_PREFIX = "sf:"

#: AVL Drumkits' key map (Black Pearl 4pc and Red Zeppelin 4pc: one rack tom, one floor tom).
AVL_KEYS: dict[str, int] = {
    "kick": 36, "side_stick": 37, "snare": 38, "tom_low": 41, "tom_mid": 45, "tom_high": 45,
    "hh_closed": 42, "hh_pedal": 44, "hh_open": 46, "crash": 49, "ride": 51, "ride_bell": 53,
}


@dataclasses.dataclass(frozen=True)
class SoundFontKit:
    """A drum preset of a SoundFont package.

    Attributes:
        package: the Debian package (:data:`adt.data.kits.packages.PACKAGES`).
        file: the SoundFont's file name inside the package's folder.
        bank, preset: the kit's preset (GM drum kits sit on bank 128; AVL's on bank 0).
        license, kind, group: as :class:`adt.data.kits.catalogue.KitInfo`.
        keys: articulation -> key; None: the GM drum map (the first GM note of each articulation).
    """

    package: str
    file: str
    bank: int
    preset: int
    license: str
    kind: str
    group: str
    keys: Mapping[str, int] | None = None

    def key_of(self, articulation: str) -> int:
        """The key that plays ``articulation`` on this kit."""
        return (self.keys or {})[articulation] if self.keys else ARTICULATIONS[articulation][1][0]


_FLUID = ("fluid-soundfont-gm", "FluidR3_GM.sf2")
#: SoundFont kit id -> kit. AVL's kits share hi-hat, splash and ride recordings with Hydrogen's
#: GMRockKit / The Black Pearl (Glen MacArthur, byte-identical PCM): one group. FluidR3's presets
#: recombine one sample pool: one group. Its Orchestra preset (timpani on tom/cymbal keys) is left out.
SOUNDFONT_KITS: dict[str, SoundFontKit] = {
    "AVL_BlackPearl4": SoundFontKit("avldrums.lv2-soundfont", "Black_Pearl_4_LV2.sf2", 0, 0, "CC-BY-SA-3.0",
                                    "acoustic", "pearl-dx", AVL_KEYS),
    "AVL_RedZeppelin4": SoundFontKit("avldrums.lv2-soundfont", "Red_Zeppelin_4_LV2.sf2", 0, 0, "CC-BY-SA-3.0",
                                     "acoustic", "pearl-dx", AVL_KEYS),
    **{f"FluidR3_{name}": SoundFontKit(*_FLUID, 128, preset, "MIT", kind, "fluidr3")
       for name, preset, kind in (("Standard", 0, "sampled"), ("Room", 8, "sampled"), ("Power", 16, "sampled"),
                                  ("Jazz", 32, "sampled"), ("Brush", 40, "sampled"),
                                  ("Electronic", 24, "electronic"), ("TR808", 25, "electronic"))},
}


def soundfont_file(kit_id: str, mirror: str | None = None, root: str | Path | None = None) -> Path:
    """The ``.sf2`` of kit ``kit_id``, its package fetched and unpacked once.

    Raises:
        KeyError: an unknown kit id (the message lists the known ones).
        adt.data.download.DownloadError: the package cannot be had (the message says what to do).
    """
    if kit_id not in SOUNDFONT_KITS:
        raise KeyError(f"unknown SoundFont kit {kit_id!r}; known: {sorted(SOUNDFONT_KITS)}")
    kit = SOUNDFONT_KITS[kit_id]
    mirror = mirror if mirror is not None else Settings.from_env().get_mirror()
    return fetch_package(kit.package, mirror, root) / kit.file


def remap_drums(pm: pretty_midi.PrettyMIDI, kit: SoundFontKit, keys: set[int]) -> pretty_midi.PrettyMIDI:
    """A copy of the drum notes of ``pm`` on the keys of ``kit`` (notes outside the GM kit map,
    or of an articulation the kit has no key for among ``keys`` and its fallbacks, are dropped)."""
    out = pretty_midi.PrettyMIDI(resolution=pm.resolution)
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
    for inst in pm.instruments:
        if not inst.is_drum:
            continue
        for note in inst.notes:
            articulation = NOTE_ARTICULATION.get(note.pitch)
            if articulation is None:
                continue
            for a in (articulation, *FALLBACK.get(articulation, ())):
                key = kit.key_of(a)
                if key in keys:
                    drums.notes.append(pretty_midi.Note(note.velocity, key, note.start, note.end))
                    break
    out.instruments.append(drums)
    return out


def render_soundfont_kit(pm: pretty_midi.PrettyMIDI, kit_id: str, sample_rate: int = 44100,
                         n_samples: int | None = None):
    """The drum notes of ``pm`` played with SoundFont kit ``kit_id``: float32 (2, samples), unclipped.

    Raises:
        KeyError: an unknown kit id.
        adt.data.download.DownloadError: its package cannot be had.
    """
    kit = SOUNDFONT_KITS.get(kit_id)
    if kit is None:
        raise KeyError(f"unknown SoundFont kit {kit_id!r}; known: {sorted(SOUNDFONT_KITS)}")
    path = soundfont_file(kit_id)
    keys = set(preset_keys(path, kit.bank, kit.preset))
    return render_midi(remap_drums(pm, kit, keys), sample_rate, n_samples=n_samples, soundfont=path,
                       drum_preset=(kit.bank, kit.preset))


def _chunks(data: bytes, start: int, end: int):
    while start + 8 <= end:
        cid, size = data[start:start + 4], struct.unpack("<I", data[start + 4:start + 8])[0]
        yield cid, start + 8, size
        start += 8 + size + (size & 1)


def _records(blob: bytes, fmt: str) -> list[tuple]:
    size = struct.calcsize(fmt)
    return [struct.unpack(fmt, blob[i:i + size]) for i in range(0, len(blob) - size + 1, size)]


@functools.lru_cache(maxsize=8)
def preset_keys(path: str | Path, bank: int, preset: int) -> dict[int, tuple[int, int]]:
    """Key -> (velocity layers, sample rate in Hz) of a SoundFont preset.

    Layers are the distinct velocity ranges of the instrument zones sounding on the key (a
    stereo pair is one layer). Reads only the ``pdta`` (hydra) chunk's records.

    Raises:
        ValueError: not a SoundFont 2 file, or no such preset (the message names the file).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise ValueError(f"{path}: not a SoundFont (no RIFF sfbk header)")
        data = head + f.read()
    pdta = {}
    for cid, start, size in _chunks(data, 12, len(data)):
        if cid == b"LIST" and data[start:start + 4] == b"pdta":
            pdta = {c.decode(): data[s:s + n] for c, s, n in _chunks(data, start + 4, start + size)}
    if "phdr" not in pdta:
        raise ValueError(f"{path}: no preset headers (pdta/phdr chunk)")
    phdr = _records(pdta["phdr"], "<20sHHHIII")
    pbag, pgen = _records(pdta["pbag"], "<HH"), _records(pdta["pgen"], "<HH")
    inst, ibag, igen = _records(pdta["inst"], "<20sH"), _records(pdta["ibag"], "<HH"), _records(pdta["igen"], "<HH")
    rates = [r[5] for r in _records(pdta["shdr"], "<20sIIIIIBbHH")]

    def zones(bags, gens, first, last):
        for z in range(first, last):
            yield dict(gens[bags[z][0]:bags[z + 1][0]])

    def span(amount):  # a key or velocity range generator: lo in the low byte, hi in the high byte
        return amount & 0xFF, amount >> 8

    index = next((i for i, r in enumerate(phdr[:-1]) if r[1] == preset and r[2] == bank), None)
    if index is None:
        raise ValueError(f"{path}: no preset {preset} in bank {bank}")
    layers: dict[int, set] = {}
    rate: dict[int, int] = {}
    for pzone in zones(pbag, pgen, phdr[index][3], phdr[index + 1][3]):
        if 41 not in pzone:  # a global zone: no instrument
            continue
        i = pzone[41]
        plo, phi = span(pzone.get(43, 0x7F00))
        for izone in zones(ibag, igen, inst[i][1], inst[i + 1][1]):
            if 53 not in izone:
                continue
            ilo, ihi = span(izone.get(43, 0x7F00))
            for key in range(max(plo, ilo), min(phi, ihi) + 1):
                layers.setdefault(key, set()).add(span(izone.get(44, 0x7F00)))
                rate.setdefault(key, rates[izone[53]])
    return {k: (len(v), rate[k]) for k, v in sorted(layers.items())}
