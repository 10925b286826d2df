"""What a run must materialize: Dagster's own staleness (code versions and data versions), plus the
settings the asset values were made with.

Dagster calls an asset STALE when its code version changed or an upstream data version changed since
its last materialization, and MISSING when it never ran (the staleness behind the UI's "Stale" badges and
``RunRequest(stale_assets_only=True)``; read by :func:`dagster_staleness`, through an internal API: Dagster has
no public one). Two things Dagster cannot see are added here: the run configuration (``AdtSettings``: a value
made under another profile is stale) and a stored value that is gone (the I/O manager's JSON file,
:mod:`pipelines.io_manager`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import dagster as dg

#: Run tag: the settings fingerprint (:func:`settings_fingerprint`) an asset value was made with.
SETTINGS_TAG = "adt/settings"


def settings_fingerprint(settings) -> str:
    """A short key of everything in :class:`adt.config.Settings` that changes asset values (the
    mirror, where the archives come from, does not: the datasets' own keys cover their content)."""
    from adt.cache import cache_key

    return cache_key("settings", {f: getattr(settings, f) for f in sorted(settings.__dataclass_fields__)
                                  if f != "mirror"})[:12]


def dagster_staleness(instance: dg.DagsterInstance, defs: dg.Definitions
                      ) -> Callable[[dg.AssetKey, str | None], tuple[str, list[str]]]:
    """Dagster's own staleness over ``defs``'s assets: ``staleness(key, partition)`` is ``(status, reasons)``,
    status "FRESH", "STALE" or "MISSING", reasons the ``reason`` of each of the asset's own stale causes
    ("code version changed", "updated data version", ...), sorted, once each.

    The one use of Dagster internals here, for want of a public call: Dagster has no public ``get_status`` /
    ``get_stale_causes`` for an asset (no method of ``DagsterInstance``, ``Definitions`` or ``AssetSelection``;
    ``RunRequest(stale_assets_only=True)`` is resolved by the sensor and schedule daemon only;
    dagster-io/dagster#19368, "Expose functions to check staleness of assets", closed without one). GraphQL's
    ``assetNodes { staleStatus(partition:) staleCauses(partition:) }`` is public but answers only for a code
    location loaded from a workspace against the ``DAGSTER_HOME`` instance (not a ``Definitions`` object, not a
    test's or an ephemeral instance), through a running webserver (``DagsterGraphQLClient`` has no call for it)
    or a ``dagster-graphql -m pipelines`` process (a new code server: seconds a query), and its ``staleCauses``
    are root causes (an upstream asset's reason, not this asset's own). The fallback is the resolver behind that
    GraphQL field, ``CachingStaleStatusResolver`` over an ``AssetGraphView`` of now, built as Dagster 1.13 builds
    it; a Dagster that moves it fails here, naming ``--force`` (materialize without planning).
    """
    try:
        from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
        from dagster._core.definitions.data_version import CachingStaleStatusResolver
        from dagster._time import get_current_datetime
    except ImportError as exc:
        raise RuntimeError(f"this Dagster ({dg.__version__}) moved the stale-status resolver pipelines.plan reads "
                           f"({exc}); materialize everything with --force, or update "
                           "pipelines.plan.dagster_staleness") from exc

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)

    def staleness(key: dg.AssetKey, partition: str | None = None) -> tuple[str, list[str]]:
        status = resolver.get_status(key, partition).value
        causes = resolver.get_stale_causes(key, partition) if status == "STALE" else []
        return status, sorted({cause.reason for cause in causes})

    return staleness


def why_materialize(instance: dg.DagsterInstance, staleness, key: dg.AssetKey, fingerprint: str,
                    partition: str | None = None) -> str | None:
    """Why ``key`` (``partition``) must be materialized, or None when its stored value is current.

    ``staleness`` is :func:`dagster_staleness`'s. Reasons: "missing" (never materialized), "stale: <Dagster's
    causes>", "settings changed" (its last materialization ran under another :data:`SETTINGS_TAG`), "stored value
    gone" (no JSON file of :mod:`pipelines.io_manager`: deleted by hand, or a data folder from before it,
    whose values are pickles that are never read: every asset is materialized again once, cheaply, since
    each stage's content-keyed cache still holds its output; with ``ADT_IO_PG_URL`` set, no row in
    PostgreSQL, :func:`pipelines.pg_io_manager.is_stored`).
    """
    from pipelines.pg_io_manager import is_stored

    status, reasons = staleness(key, partition)
    if status == "MISSING":
        return "missing"
    if status == "STALE":
        return "stale: " + "; ".join(reasons) if reasons else "stale"
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    if run is None or run.tags.get(SETTINGS_TAG) != fingerprint:
        return "settings changed"
    if not is_stored(instance, key, partition):
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
    staleness = dagster_staleness(instance, defs)
    corrupt = corrupt or {}
    out = {k: why for k in keys if (why := (f"corrupt: {corrupt[k.to_user_string()]}" if k.to_user_string() in corrupt
                                            else why_materialize(instance, staleness, k, fingerprint, partition)))}
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
