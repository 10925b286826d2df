"""A quiet console for Dagster runs: one line per step, warnings and errors, nothing else.

Dagster's default console logger prints every event (about 20 DEBUG lines per step); those stay in
the run's event log (the UI), where they belong. On a terminal the running step's line shows its
latest message and, when the message counts (``12/68``), a progress bar, rewritten in place; in a
log file (not a terminal) only the finished lines are written. Warnings are left out by who logs them
(:data:`QUIET_WARNINGS_OF`, :func:`logged_by`), never by their text.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import time

import dagster as dg

_COUNT = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
_BAR = 20
#: Classes whose own code's warnings are expected here and left to the event log (:func:`logged_by` names the
#: module that logged a warning): Dagster's ``UPathIOManager`` (the base of :mod:`pipelines.io_manager`'s) warns
#: once per partition that an ``allow_missing_partitions`` input skips: a dataset that is not reachable
#: (``make demo`` names those once, at its start). Its errors still show, and so do a subclass's own warnings.
QUIET_WARNINGS_OF: tuple[type, ...] = (dg.UPathIOManager,)
#: Where a record passes on its way to a handler, not where it was logged (:func:`logged_by`).
_RELAY = ("logging", dg.DagsterLogManager.__module__, __name__)


def logged_by() -> str:
    """The module whose code made the log call now being handled (the name a ``logging.getLogger(__name__)``
    logger would have): the first frame outward from the caller outside :mod:`logging`, Dagster's log manager
    and this module; "" when none.

    Dagster hands a run's loggers a record of its own (logger ``adt_console``, made in its log manager) that
    keeps neither the original logger's name nor where it was logged, and a log call carries no warning class;
    the call is still on the stack, since a step logs in the process and thread that run it.
    """
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not any(module == relay or module.startswith(relay + ".") for relay in _RELAY):
            return module
        frame = frame.f_back
    return ""


def quiet_warning(record: logging.LogRecord) -> bool:
    """Whether ``record`` (being handled now) is a warning of :data:`QUIET_WARNINGS_OF`'s own code."""
    return record.levelno == logging.WARNING and logged_by() in {cls.__module__ for cls in QUIET_WARNINGS_OF}


def failure_line(event) -> str | None:
    """``"ChecksumError: data/downloads/x.zip: ..."``: the exception that failed a step (a STEP_FAILURE
    ``DagsterEvent``), its class and first line (which names the file), under Dagster's wrapper (a
    ``dagster.Failure`` an asset raised: its message alone); None when the event carries no error."""
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause  # DagsterExecutionStepExecutionError wraps the asset's own exception
    if error is None:
        return None
    first = next((line for line in error.message.strip().splitlines() if line.strip()), error.cls_name)
    head, sep, rest = first.partition(": ")  # the message starts "<module.Class>: "
    first = rest if sep and head.endswith(error.cls_name) else first
    return first if error.cls_name == "Failure" else f"{error.cls_name}: {first}"  # dagster.Failure: the asset's words


def progress_bar(message: str) -> str:
    """``[#####-----] 12/48`` for the last ``i/n`` count in ``message``, else ""."""
    counts = [(int(i), int(n)) for i, n in _COUNT.findall(message) if 0 < int(n) and int(i) <= int(n)]
    if not counts:
        return ""
    done, total = counts[-1]
    filled = round(_BAR * done / total)
    return f"[{'#' * filled}{'-' * (_BAR - filled)}] {done}/{total}"


class StepLines(logging.Handler):
    """Prints a line when a step succeeds or fails, and every warning and error; on a terminal also
    a live line for the running step. Reads Dagster's ``dagster_meta`` record attribute."""

    def __init__(self, stream=None):
        super().__init__(logging.DEBUG)
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started: dict[str, float] = {}
        self.live = False

    def _write(self, line: str, live: bool = False) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\033[K" + line[:width] + ("" if live else "\n"))
            self.live = live
        elif not live:
            self.stream.write(line + "\n")
        self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        kind = event.event_type if event is not None else None
        if kind == dg.DagsterEventType.STEP_START:
            self.started[step] = time.perf_counter()
            self._write(f"  {step} ...", live=True)
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            took = time.perf_counter() - self.started.pop(step, time.perf_counter())
            self._write(f"  {step:<30} done {took:7.1f} s")
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            self._write(f"  {step:<30} FAILED: {failure_line(event) or meta.get('orig_message') or record.getMessage()}")
        elif kind == dg.DagsterEventType.RUN_FAILURE:
            self._write(f"  run failed: {meta.get('orig_message') or record.getMessage()}")
        elif event is None and record.levelno >= logging.WARNING:
            if quiet_warning(record):
                return
            self._write(f"  {step + ': ' if step else ''}{record.levelname.lower()}: "
                        f"{meta.get('orig_message') or record.getMessage()}")
        elif event is None and step and self.tty and record.levelno >= logging.INFO:
            message = " ".join(str(meta.get("orig_message") or record.getMessage()).split())
            bar = progress_bar(message)
            self._write(f"  {step} {bar + ' ' if bar else ''}{message}", live=True)


@dg.logger(description="One line per step, warnings and errors (pipelines.console); the full log is in the "
                       "run's event log.")
def adt_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("adt_console", level=logging.DEBUG)
    logger.addHandler(StepLines())
    return logger
