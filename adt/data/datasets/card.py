"""Dataset cards: a Markdown summary of one dataset's unified tables."""

from __future__ import annotations

import pandas as pd

from adt.data.datasets import SPLITS, DatasetTables
from adt.vocab import CLASSES_5


def card_rows(tables: DatasetTables) -> pd.DataFrame:
    """Per split (and ``all``): tracks, hours, onsets per class (5-class)."""
    t, o = tables.tracks, tables.onsets
    split_of = dict(zip(t.track_id, t.split))
    o = o.assign(split=o.track_id.map(split_of))
    rows = []
    for split in [*SPLITS, "all"]:
        tt = t if split == "all" else t[t.split == split]
        if tt.empty:
            continue
        oo = o if split == "all" else o[o.split == split]
        counts = oo.drum.value_counts()
        rows.append({"split": split, "tracks": len(tt), "hours": round(float(tt.duration_s.sum()) / 3600, 3),
                     **{c: int(counts.get(c, 0)) for c in CLASSES_5}})
    return pd.DataFrame(rows, columns=["split", "tracks", "hours", *CLASSES_5])


def dataset_card(module, tables: DatasetTables) -> str:
    """Markdown card for a dataset module's tables: source, access, license, sample rates,
    audio present, and tracks/hours/onsets per class per split (the selection the profile made)."""
    t = tables.tracks
    rates = sorted({int(s) for s in t.sample_rate.dropna()})
    audio = [label for col, label in (("mix_path", "mix"), ("drum_path", "drums"), ("midi_path", "MIDI"))
             if t[col].notna().any()]
    lines = [
        f"### {module.NAME}",
        "",
        f"- source: {getattr(module, 'HOMEPAGE', '')}",
        f"- access: {getattr(module, 'ACCESS', 'open')}; license: {getattr(module, 'LICENSE', '')}",
        f"- sample rates (Hz): {rates}; files: {', '.join(audio) or 'none'}",
        f"- ground-truth beats: {tables.beats.track_id.nunique()} tracks",
        "",
        card_rows(tables).to_markdown(index=False),
    ]
    return "\n".join(lines)
