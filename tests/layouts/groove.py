"""Groove MIDI layout: a few real performances cut from the mirrored archive, with
``groove/info.csv`` restricted to them (one per split and a fill)."""

from __future__ import annotations

import csv
import io
import zipfile

from tests.conftest import mirror_dir

KEEP = 6  # performances per split kept (the first eligible 4/4 beats and anything before them)


def archive_files() -> dict[str, bytes]:
    src = mirror_dir() / "groove-v1.0.0-midionly.zip"
    with zipfile.ZipFile(src) as zin:
        rows = list(csv.DictReader(io.StringIO(zin.read("groove/info.csv").decode())))
        chosen, per_split = [], {}
        for row in rows:
            n = per_split.get(row["split"], 0)
            if n < KEEP:
                chosen.append(row)
                per_split[row["split"]] = n + 1
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(chosen)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
            zout.writestr("groove/info.csv", out.getvalue())
            for row in chosen:
                zout.writestr("groove/" + row["midi_filename"], zin.read("groove/" + row["midi_filename"]))
    return {"groove-v1.0.0-midionly.zip": buf.getvalue()}
