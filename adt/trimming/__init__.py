"""Lottery-ticket structured trimming of the transcriber (lottery paper: "Ultra-light deep MIR by trimming
lottery tickets"; the asset ``trimmed_transcriber``).

Modules, one concept each (the trimmable layers and the network rebuilt without some units are
:mod:`adt.frame.units`: the frame stage loads trimmed networks too): :mod:`~adt.trimming.criteria` (Eqs. 3-5, local and global selection),
:mod:`~adt.trimming.masking` (the original lottery ticket's weight masks), :mod:`~adt.trimming.lottery`
(the schedule: train, remove, rewind, retrain; resumable per round), :mod:`~adt.trimming.measure`
(Table 1's columns) and :mod:`~adt.trimming.study` (the stage: Figure 2, Table 1, the ``lite`` model).
"""
