"""Recorded drum kits (issue: real-sounding training audio), part of the ingest stage.

Modules: :mod:`~adt.data.kits.packages` (the Debian packages with drum samples, pinned by
SHA-256, fetched and unpacked without dpkg), :mod:`~adt.data.kits.hydrogen` (Hydrogen
``drumkit.xml``: pieces, velocity layers, gains, mute groups; velocity-layer choice),
:mod:`~adt.data.kits.mapping` (the reviewed piece -> articulation -> class / GM note
tables), :mod:`~adt.data.kits.catalogue` (the catalogue ``adt kits`` prints: kit, source
package, license, kind, pieces per class).
"""
