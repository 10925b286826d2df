"""Hydrogen drum kits: ``drumkit.xml`` read into kit pieces with velocity layers.

Three layouts occur in the Debian kits (with or without the namespace
``http://www.hydrogen-music.org/drumkit``):

* Hydrogen >= 0.9.7: ``instrument/instrumentComponent/layer/{filename,min,max,gain,pitch}``
  (GMRockKit, TR808EmulationKit);
* Hydrogen 0.9.x: ``instrument/layer/...`` directly under the instrument;
* legacy: a single ``instrument/filename`` (one layer covering velocities 0..1).

Layer velocities are Hydrogen's 0..1 (MIDI velocity / 127). Level as Hydrogen computes
it: layer gain x component gain x instrument ``gain`` x instrument ``volume``.
``muteGroup`` != -1 chokes the other pieces of the group (Hydrogen's open/closed hi-hat).
Placeholders (no layer) and layers whose sample file is missing are left out and listed.
Kit-level ``license`` (``licence`` in the Millo kits) and ``author`` are kept.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path


class KitError(ValueError):
    """A kit that cannot be read; the message names the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One sample of a piece: played for velocities in [min_velocity, max_velocity] (0..1)."""

    path: Path
    min_velocity: float
    max_velocity: float
    gain: float = 1.0
    pitch: float = 0.0


@dataclasses.dataclass(frozen=True)
class Piece:
    """One instrument of a kit (e.g. "Hat Open"), its layers ordered by velocity."""

    name: str
    layers: tuple[Layer, ...]
    gain: float = 1.0
    mute_group: int = -1


@dataclasses.dataclass(frozen=True)
class HydrogenKit:
    """A kit folder read from its ``drumkit.xml``.

    Attributes:
        folder, name, author, license: as the kit says (license "" when it gives none).
        pieces: instruments with at least one layer whose sample exists.
        skipped: "instrument: reason" for placeholders and missing samples.
    """

    folder: Path
    name: str
    author: str
    license: str
    pieces: tuple[Piece, ...]
    skipped: tuple[str, ...] = ()

    def piece(self, name: str) -> Piece:
        """The piece named ``name``.

        Raises:
            KeyError: no such piece (the message lists the kit's).
        """
        for p in self.pieces:
            if p.name == name:
                return p
        raise KeyError(f"{self.name}: no piece {name!r}; pieces: {[p.name for p in self.pieces]}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c.tag) == name), None)


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == name]


def _text(node: ET.Element, name: str, default: str = "") -> str:
    child = _child(node, name)
    return child.text.strip() if child is not None and child.text else default


def _float(node: ET.Element, name: str, default: float, where: str) -> float:
    value = _text(node, name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise KitError(f"{where}: <{name}> is not a number: {value!r}") from None


def read_kit(folder: str | Path) -> HydrogenKit:
    """Read the Hydrogen kit in ``folder`` (module docstring).

    Raises:
        KitError: no ``drumkit.xml``, XML that does not parse, or no ``instrumentList``.
    """
    folder = Path(folder)
    xml = folder / "drumkit.xml"
    if not xml.is_file():
        raise KitError(f"{folder}: no drumkit.xml (not a Hydrogen kit folder)")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise KitError(f"{xml}: not valid XML ({exc})") from None
    instruments = _child(root, "instrumentList")
    if instruments is None:
        raise KitError(f"{xml}: no <instrumentList>")
    pieces, skipped = [], []
    for inst in _children(instruments, "instrument"):
        name = _text(inst, "name") or f"instrument {_text(inst, 'id', '?')}"
        where = f"{xml} ({name})"
        components = _children(inst, "instrumentComponent")
        sources = [(layer, _float(c, "gain", 1.0, where)) for c in components for layer in _children(c, "layer")]
        sources += [(layer, 1.0) for layer in _children(inst, "layer")]
        if not sources and _text(inst, "filename"):
            sources = [(inst, 1.0)]  # legacy: one sample, every velocity
        layers, missing = [], []
        for node, component_gain in sources:
            filename = _text(node, "filename")
            path = folder / filename
            if not filename or not path.is_file():
                missing.append(filename)
                continue
            layers.append(Layer(path, _float(node, "min", 0.0, where), _float(node, "max", 1.0, where),
                                _float(node, "gain", 1.0, where) * component_gain, _float(node, "pitch", 0.0, where)))
        if missing:
            skipped.append(f"{name}: missing samples {missing}")
        if not layers:
            if not missing:
                skipped.append(f"{name}: no layer (placeholder)")
            continue
        gain = _float(inst, "gain", 1.0, where) * _float(inst, "volume", 1.0, where)
        pieces.append(Piece(name, tuple(sorted(layers, key=lambda lay: (lay.min_velocity, lay.max_velocity))), gain,
                            int(_float(inst, "muteGroup", -1, where))))
    return HydrogenKit(folder, _text(root, "name") or folder.name, _text(root, "author"),
                       _text(root, "license") or _text(root, "licence"), tuple(pieces), tuple(skipped))


def kit_folders(root: str | Path) -> list[Path]:
    """Every Hydrogen kit folder (holding a ``drumkit.xml``) under ``root``, sorted."""
    return sorted(p.parent for p in Path(root).glob("*/drumkit.xml"))


def choose_layer(piece: Piece, velocity: int, counter: int = 0) -> Layer:
    """The layer a MIDI ``velocity`` (1..127) plays, as Hydrogen's VELOCITY selection does.

    The layer whose [min, max] holds velocity / 127; several such layers alternate
    (round robin by ``counter``); below or above every layer, the nearest one.
    """
    v = min(max(velocity, 0), 127) / 127
    hits = [lay for lay in piece.layers if lay.min_velocity <= v <= lay.max_velocity]
    if hits:
        return hits[counter % len(hits)]
    return min(piece.layers, key=lambda lay: min(abs(v - lay.min_velocity), abs(v - lay.max_velocity)))
