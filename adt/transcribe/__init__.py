"""``adt transcribe``: audio in, drum score out, with the registered transcriber.

Modules: :mod:`~adt.transcribe.cli` (the command line), :mod:`~adt.transcribe.models` (which transcriber, loaded
weights-only: the registry's champion or the shipped one), :mod:`~adt.transcribe.transcriber`
(separation, activations, peak picking, optional tatum quantization on the grid of
:mod:`adt.rhythm.tatums`), :mod:`~adt.transcribe.musicxml` (the score as MusicXML with
partitura); MIDI export is :func:`adt.midi.write_drum_midi` (GM notes 36, 38, 47, 42, 49).
"""
