"""``adt kits``: the kit catalogue (kit, source package, license, kind, pieces per class)."""

from __future__ import annotations

import argparse
import sys

from adt.config import Settings
from adt.data.kits.hydrogen import KitError


def add_parser(sub) -> None:
    """The ``kits`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    k = sub.add_parser("kits", help="list the recorded drum kits (Debian packages, fetched and unpacked once)")
    k.add_argument("--packages", help="comma-separated Debian packages (default: all of the catalogue's: "
                                      "hydrogen-data, hydrogen-drumkits, avldrums.lv2-soundfont, "
                                      "fluid-soundfont-gm and the one-shot pools)")
    k.add_argument("--pieces", action="store_true", help="one line per mapped kit piece instead of per kit")
    k.add_argument("--left-out", action="store_true", help="also list the pieces left out, with the reason")
    k.add_argument("-o", "--output", help="also write the catalogue (one row per piece) as Parquet")
    k.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the catalogue; returns the exit status (2 when a package cannot be had or read)."""
    # lazy: pandas 0.3 s, tqdm, http 40 ms at adt --help
    from adt.data.download import DownloadError
    from adt.data.kits.catalogue import (HYDROGEN_PACKAGES, POOL_PACKAGES, SOUNDFONT_PACKAGES, kit_catalogue,
                                         kit_summary, write_catalogue)

    packages = args.packages.split(",") if args.packages else HYDROGEN_PACKAGES + SOUNDFONT_PACKAGES + POOL_PACKAGES
    try:
        pieces, left_out = kit_catalogue(packages, Settings.from_env().get_mirror())
    except (DownloadError, KitError, KeyError) as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    table = pieces.drop(columns=["first_sample"]) if args.pieces else kit_summary(pieces)
    print(table.to_markdown(index=False))
    if args.left_out and not left_out.empty:
        print("\nleft out:\n" + left_out.to_markdown(index=False))
    if args.output:
        print(f"\nwrote {write_catalogue(pieces, args.output)}")
    return 0
