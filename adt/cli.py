"""The ``adt`` command: ``adt transcribe`` (:mod:`adt.transcribe.cli`), ``adt separate``
(:mod:`adt.separation.cli`), ``adt kits`` (:mod:`adt.data.kits.cli`), ``adt verify`` (:mod:`adt.verify`) and
``adt evaluate`` (:mod:`adt.evaluation.cli`). Exit
status: 0 done, 2 bad input (the message says what); ``adt verify``: 1 when it finds corrupt files."""

from __future__ import annotations

import argparse
import sys

from adt import verify as verify_cli
from adt.data.kits import cli as kits_cli
from adt.evaluation import cli as evaluate_cli
from adt.separation import cli as separation_cli
from adt.transcribe import cli as transcribe_cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adt", description="Automatic drum transcription")
    sub = p.add_subparsers(dest="command", required=True)
    transcribe_cli.add_parser(sub)
    separation_cli.add_parser(sub)
    kits_cli.add_parser(sub)
    verify_cli.add_parser(sub)
    evaluate_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
