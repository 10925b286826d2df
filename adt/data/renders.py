"""A corpus's renders in worker processes: those not cached are rendered side by side, one per job.

The demo corpus and the Groove renders (:mod:`adt.data.datasets.demo`, :mod:`adt.data.datasets.groove`)
plan their renders in the stage's process, read the cached ones there, and hand the others to
:func:`adt.parallel.run_jobs` (``concurrent.futures`` with ``spawn``, ``ADT_JOBS`` processes: the cores by
default; with one, in this process). A render draws all its randomness from its own seed (accompaniment,
kit variation, effects, noise: :func:`adt.data.corpus.render_track`), and the synthesizers a process keeps
are reset before each render (:func:`adt.data.render._new_synth`), so the audio does not depend on the
process or the order (``tests/test_render.py`` compares them). Each render writes its files atomically and
its recipe file last: a worker that dies leaves nothing a re-run trusts, and a re-run finds the finished
renders cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from adt.data.kits.catalogue import unpack_kits
from adt.parallel import run_jobs

log = logging.getLogger(__name__)


def render_in_processes(render: Callable[..., Any], calls: Sequence[dict], names: Sequence[str],
                        cached: Callable[[dict], Any], kits: Sequence[str] = (),
                        accompaniment_soundfont: str | None = None, every: int = 10) -> list:
    """``render(**call)`` of each of ``calls`` whose ``cached(call)`` is None, in worker processes; results in
    order (``cached(call)`` where it was not None).

    Args:
        render: a module-level function (pickled by name); its arguments picklable.
        names: one per call, for the log (the track ids).
        cached: the result of a complete earlier render of a call, else None (runs here).
        kits, accompaniment_soundfont: the kits the renders may play (donors included) and the
            accompaniment's SoundFont package: their Debian packages are fetched and unpacked first
            (:func:`adt.data.kits.catalogue.unpack_kits`, side by side), so that workers only read them.
        every: log a line per ``every`` finished renders (module logger).

    Raises:
        ValueError: ``ADT_JOBS`` is not a positive integer.
        adt.data.download.DownloadError: a kit package cannot be had.
        whatever a render raised (the first failed one; the others finish or are cancelled, the finished
            ones stay cached).
    """
    results = [cached(call) for call in calls]
    todo = [k for k, r in enumerate(results) if r is None]
    if not todo:
        return results
    unpack_kits(kits, accompaniment_soundfont)
    log.info("rendering %d of %d tracks (%d cached)", len(todo), len(calls), len(calls) - len(todo))
    done = run_jobs(render, [calls[k] for k in todo], names=[names[k] for k in todo],
                    log=lambda msg: log.info("render: %s", msg), every=every)
    for k, result in zip(todo, done):
        results[k] = result
    return results
