"""Recorded drum kits (issue: real-sounding training audio), part of the ingest stage.

Modules: :mod:`~adt.data.kits.packages` (the Debian packages with drum samples, pinned by
SHA-256, fetched and unpacked without dpkg), :mod:`~adt.data.kits.hydrogen` (Hydrogen
``drumkit.xml``: pieces, velocity layers, gains, mute groups; velocity-layer choice),
:mod:`~adt.data.kits.soundfont` (drum presets of SoundFont packages: AVL, FluidR3),
:mod:`~adt.data.kits.oneshots` (one-shot pools: a kit drawn per track),
:mod:`~adt.data.kits.mapping` (the reviewed piece -> articulation -> class / GM note
tables), :mod:`~adt.data.kits.sampler` (drum MIDI played with a sampled kit, per-track
variation), :mod:`~adt.data.kits.catalogue`
(the catalogue ``adt kits`` prints and the ``kit_catalogue`` asset stores: kit, source package,
license, kind, pieces per class).
"""
