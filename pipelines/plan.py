"""What a run must materialize: Dagster's own staleness (code versions and data versions), plus the
settings the asset values were made with.

Dagster calls an asset STALE when its code version changed or an upstream data version changed since
its last materialization, and MISSING when it never ran (``CachingStaleStatusResolver``, the resolver
behind the UI's "Stale" badges and ``RunRequest(stale_assets_only=True)``). Two things Dagster cannot
see are added here: the run configuration (``AdtSettings``: a value made under another profile is
stale) and a stored value that is gone (the I/O manager's JSON file, :mod:`pipelines.io_manager`).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

#: Run tag: the settings fingerprint (:func:`settings_fingerprint`) an asset value was made with.
SETTINGS_TAG = "adt/settings"


def settings_fingerprint(settings) -> str:
    """A short key of everything in :class:`adt.config.Settings` that changes asset values (the
    mirror, where the archives come from, does not: the datasets' own keys cover their content)."""
    from adt.cache import cache_key

    return cache_key("settings", {f: getattr(settings, f) for f in sorted(settings.__dataclass_fields__)
                                  if f != "mirror"})[:12]


def resolver(instance: dg.DagsterInstance, defs: dg.Definitions):
    """Dagster's stale-status resolver over ``defs``'s asset graph (an internal API: the UI's)."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def why_materialize(instance: dg.DagsterInstance, status, key: dg.AssetKey, fingerprint: str,
                    partition: str | None = None) -> str | None:
    """Why ``key`` (``partition``) must be materialized, or None when its stored value is current.

    ``status`` is :func:`resolver`'s. Reasons: "missing" (never materialized), "stale: <Dagster's causes>",
    "settings changed" (its last materialization ran under another :data:`SETTINGS_TAG`), "stored value
    gone" (no JSON file of :mod:`pipelines.io_manager`: deleted by hand, or a data folder from before it,
    whose values are pickles that are never read: every asset is materialized again once, cheaply, since
    each stage's content-keyed cache still holds its output).
    """
    from pipelines.io_manager import stored_value_path

    from dagster._core.definitions.data_version import StaleStatus

    state = status.get_status(key, partition)
    if state == StaleStatus.MISSING:
        return "missing"
    if state == StaleStatus.STALE:
        causes = status.get_stale_causes(key, partition)
        return "stale: " + "; ".join(sorted({c.reason for c in causes})) if causes else "stale"
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    if run is None or run.tags.get(SETTINGS_TAG) != fingerprint:
        return "settings changed"
    if not stored_value_path(instance.storage_directory(), key, partition).is_file():
        return "stored value gone"
    return None


def to_materialize(instance: dg.DagsterInstance, defs: dg.Definitions, keys: Iterable[dg.AssetKey],
                   fingerprint: str, partition: str | None = None,
                   corrupt: dict[str, str] | None = None) -> dict[dg.AssetKey, str]:
    """The keys of ``keys`` that must be materialized, each with why (:func:`why_materialize`, or ``corrupt``:
    asset name -> a cached file of it that is not what was written, :func:`adt.cache.verify`), plus
    their descendants among ``keys`` (they run in the same run, after it: Dagster marks a descendant
    stale only once the new data version exists; each asset's own cache spares the work when its
    inputs' keys did not change) and the other outputs of a multi-asset that cannot run one alone."""
    graph = defs.resolve_asset_graph()
    keys = list(keys)
    status = resolver(instance, defs)
    corrupt = corrupt or {}
    out = {k: why for k in keys if (why := (f"corrupt: {corrupt[k.to_user_string()]}" if k.to_user_string() in corrupt
                                            else why_materialize(instance, status, k, fingerprint, partition)))}
    pending = list(out)
    while pending:
        key = pending.pop()
        for child in graph.get(key).child_keys:
            if child in keys and child not in out:
                out[child] = f"downstream of {key.to_user_string()}"
                pending.append(child)
    for key in list(out):
        node = graph.get(key)
        siblings = [k for k in graph.get_execution_set_asset_and_check_keys(node.key)
                    if isinstance(k, dg.AssetKey) and k in keys]
        for sibling in siblings:
            out.setdefault(sibling, f"runs with {key.to_user_string()}")
    return out
