"""Dagster metadata a person reads: MLflow runs and registered models as links, figures as images sized to the
metadata column, tables as Dagster tables (never JSON, never Markdown behind "[Show Markdown]"), floats rounded."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def link(text: str, url: str) -> dg.MarkdownMetadataValue:
    """A link with a short text (inline Markdown): Dagster shows a URL value as its whole address, one unbreakable
    line that widens the metadata table past the page (the cut-off tables of issue 31)."""
    return dg.MetadataValue.md(f"[{text}]({url})")


def mlflow_run(run_id: str | None) -> dict:
    """``mlflow_run``: a link to the run in ``make ui``'s MLflow (:func:`adt.tracking.run_url`), named by the run's
    first 8 characters, for the metadata of every asset that logs one; empty without a run."""
    from adt.tracking import run_url

    url = run_url(run_id) if run_id else None
    return {"mlflow_run": link(f"MLflow run {run_id[:8]}", url)} if url else {}


def registered_model(uri: str | None, name: str = "model") -> dict:
    """``model``: a link to a registered model version's page in MLflow, opened in the model-training view
    (:func:`adt.tracking.model_url`); its ``models:/`` URI as text when the registry does not know it."""
    from adt.tracking import model_url

    if not uri:
        return {}
    url = model_url(uri)
    return {name: link(f"{uri.removeprefix('models:/')} in the MLflow registry", url) if url else str(uri)}


#: Width (pixels) a figure is shown at: what fits the metadata column of Dagster's asset page at 1600 px
#: (measured by tests/test_e2e.py's browser test). Wider figures are linked, with a preview of this width.
FIGURE_WIDTH = 560


def figure(name: str, path: str | Path | None, run_id: str | None, title: str) -> dict:
    """A figure logged as an artifact of MLflow run ``run_id``: ``name`` shows it (Markdown served by ``make ui``'s
    MLflow, :func:`adt.tracking.artifact_url`) with a link to it; a figure wider than :data:`FIGURE_WIDTH`
    shows as a preview of that width (:func:`adt.tracking.preview`, logged beside it) and links to the full
    size. Without a run, its file path; empty without a figure."""
    if not path:
        return {}
    from adt.tracking import artifact_url, preview

    if not run_id:
        return {name: dg.MetadataValue.path(str(path))}
    shown = preview(run_id, path, FIGURE_WIDTH)
    full, small = artifact_url(run_id, Path(path).name), artifact_url(run_id, shown)
    return {name: dg.MetadataValue.md(f"**{title}** ([full size]({full}))\n\n![{title}]({small})")}


def figure_link(name: str, artifact: str, run_id: str | None) -> dict:
    """``name``: a link to figure ``artifact`` of MLflow run ``run_id`` (shown where its figures are also a table)."""
    from adt.tracking import artifact_url

    return {name: link(artifact, artifact_url(run_id, artifact))} if run_id else {}


def rounded(value, digits: int = 4):
    """``value`` with every float rounded to ``digits`` (in dicts and lists too), for metadata."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


#: Characters a table may span in the metadata column of an asset page at 1600 px (about 535 px, 9 px a character
#: with the cell padding, measured in Chromium; Dagster wraps cells at spaces,
#: never headers; tests/test_e2e.py checks in a browser that no table is cut off): wider tables are split.
TABLE_CHARS = 54


def _min_chars(frame, column) -> int:
    """The narrowest a column can be, in characters: its header (never wrapped) or its longest word, plus padding."""
    words = [len(w) for v in frame[column] if v is not None for w in str(v).split()]
    return max([len(str(column)), *words]) + 2


def table_entries(name: str, frame, index: str | None = None) -> dict:
    """``{name: table}`` (:func:`table`), or, for a table wider than :data:`TABLE_CHARS`, its columns in parts that
    fit, each with the first column again: ``name``, ``"name (2/3)"``, ``"name (3/3)"``."""
    frame = frame.reset_index(names=index) if index else frame
    label, *rest = list(frame.columns)
    parts, width = [[]], _min_chars(frame, label)
    for column in rest:
        needed = _min_chars(frame, column)
        if parts[-1] and width + needed > TABLE_CHARS:
            parts.append([])
            width = _min_chars(frame, label)
        parts[-1].append(column)
        width += needed
    return {name if i == 0 else f"{name} ({i + 1}/{len(parts)})": table(frame[[label, *part]])
            for i, part in enumerate(parts)}


def table(frame, index: str | None = None) -> dg.TableMetadataValue:
    """A DataFrame as a Dagster table (rendered inline in the UI, not behind "Show Markdown"); the index
    becomes the first column, named ``index``. Floats stay numbers (rounded to 4 digits), the rest become text.
    :func:`table_entries` splits one too wide for the page."""
    import pandas as pd

    frame = frame.reset_index(names=index) if index else frame
    kinds = {c: "float" if pd.api.types.is_float_dtype(frame[c]) else
             "int" if pd.api.types.is_integer_dtype(frame[c]) else "string" for c in frame.columns}
    records = [dg.TableRecord({str(c): (None if pd.isna(v) else round(float(v), 4) if kinds[c] == "float" else
                                        int(v) if kinds[c] == "int" else str(v)) for c, v in row.items()})
               for row in frame.to_dict("records")]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(
        columns=[dg.TableColumn(str(c), kinds[c]) for c in frame.columns]))


def _cell(text: str):
    text = text.strip()
    try:
        return float(text) if any(c.isdigit() for c in text) and not text.isdigit() else int(text)
    except ValueError:
        return text


def markdown_tables(name: str, markdown: str, names: tuple[str, ...] = ()) -> dict:
    """The pipe tables of ``markdown`` (a library's Markdown table, with its title and notes) as Dagster tables:
    ``name`` for the first, ``name_2``... for the others (or ``names``, in order), and ``name_note`` for the text
    around them (short Markdown, shown inline). Numbers become numbers; empty cells stay empty."""
    import pandas as pd

    out, notes, block, found = {}, [], [], []

    def close() -> None:
        if len(block) >= 2:
            head = [c.strip() or "name" for c in block[0].strip().strip("|").split("|")]
            rows = [[_cell(c) for c in line.strip().strip("|").split("|")] for line in block[2:]]
            frame = pd.DataFrame([r + [""] * (len(head) - len(r)) for r in rows], columns=head)
            for column in frame.columns:  # a column of numbers (gaps as "-" or empty) stays numeric
                if all(isinstance(v, (int, float)) or str(v).strip() in ("", "-", "nan") for v in frame[column]):
                    frame[column] = pd.to_numeric(frame[column], errors="coerce")
            i = len(found)
            found.append(frame)
            out.update(table_entries(names[i] if i < len(names) else name if not i else f"{name}_{i + 1}", frame))
        block.clear()

    for line in (markdown or "").splitlines():
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        close()
        if line.strip():
            notes.append(line.strip())
    close()
    if notes:
        out[f"{name}_note"] = dg.MetadataValue.md("\n\n".join(notes))
    return out


def mapping_table(name: str, values: dict, key: str = "name", value: str = "value") -> dict:
    """``{name: a dict as a two-column table}``; a dict of dicts (``{"k5": {"test": 1.4}}``) as one row per key
    with a column per inner key (split when too wide, :func:`table_entries`). Floats rounded to 4 digits."""
    import pandas as pd

    if values and all(isinstance(v, dict) for v in values.values()):
        return table_entries(name, pd.DataFrame.from_dict(rounded(values), orient="index"), index=key)
    return table_entries(name, pd.DataFrame({key: list(map(str, values)),
                                             value: [v if isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     else str(v) for v in rounded(list(values.values()))]}))


def skipped_table(skipped: list) -> dict:
    """``skipped``: the tracks left out and why (``{"track_id", "reason"}`` dicts, ``"<track_id>: <reason>"`` texts
    or plain track ids; the first 50) as a table, or 0."""
    import pandas as pd

    rows = pd.DataFrame([s if isinstance(s, dict) else dict(zip(("track_id", "reason"), str(s).split(": ", 1)))
                         for s in skipped[:50]], columns=["track_id", "reason"]).fillna("")
    return table_entries("skipped", rows) if len(rows) else {"skipped": 0}


def dagster_metadata(entries: dict) -> dict:
    """A stage result's :meth:`adt.results.StageResult.metadata` as Dagster metadata: each entry type through its
    helper above (tables split when wide, links short, figures as previews); plain values as they are; None left
    out."""
    from adt import results

    helpers = {results.Table: lambda n, e: table_entries(n, e.frame(), index=e.index),
               results.MarkdownTables: lambda n, e: markdown_tables(n, e.text, names=e.names or ()),
               results.Mapping: lambda n, e: mapping_table(n, e.values, key=e.key, value=e.value),
               results.RunLink: lambda n, e: mlflow_run(e.run_id),
               results.ModelLink: lambda n, e: registered_model(e.uri, name=n),
               results.Figure: lambda n, e: figure(n, e.path, e.run_id, e.caption),
               results.FigureLink: lambda n, e: figure_link(n, e.file, e.run_id),
               results.PathEntry: lambda n, e: {n: dg.MetadataValue.path(e.path)},
               results.Skipped: lambda n, e: skipped_table(e.items)}
    out: dict = {}
    for name, entry in entries.items():
        if entry is not None:
            helper = helpers.get(type(entry))
            out.update(helper(name, entry) if helper else {name: entry})
    return out
