"""Dataset cards: a Markdown summary of one dataset's unified tables."""

from __future__ import annotations

import pandas as pd

from adt.data.datasets import SPLITS, DatasetTables
from adt.data.kits.catalogue import kit_license
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


def kit_rows(tables: DatasetTables) -> pd.DataFrame:
    """Per split and kit of a rendered dataset: tracks, hours, onsets per class, the kit's license
    (empty when the tracks name no kit)."""
    t = tables.tracks[tables.tracks.kit.notna()]
    columns = ["split", "kit", "license", "tracks", "hours", *CLASSES_5]
    if t.empty:
        return pd.DataFrame(columns=columns)
    counts = tables.onsets.merge(t[["track_id", "split", "kit"]], on="track_id").pivot_table(
        index=["split", "kit"], columns="drum", values="time_s", aggfunc="count", fill_value=0)
    rows = t.groupby(["split", "kit"]).agg(tracks=("track_id", "count"), hours=("duration_s", "sum"))
    rows["hours"] = (rows["hours"] / 3600).round(3)
    rows = rows.join(counts).fillna(0).reset_index()
    rows["license"] = rows["kit"].map(kit_license)
    order = {s: i for i, s in enumerate(SPLITS)}
    rows = rows.sort_values(["split", "kit"], key=lambda c: c.map(order) if c.name == "split" else c)
    for c in CLASSES_5:
        rows[c] = rows[c].astype(int) if c in rows else 0
    return rows[columns]


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
    kits = kit_rows(tables)
    if not kits.empty:
        lines += ["", "Per kit (kit-disjoint splits: no kit's recordings in two splits):", "",
                  kits.to_markdown(index=False)]
    return "\n".join(lines)
