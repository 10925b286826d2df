"""The assets, generated from the stage registry (:data:`adt.stages.STAGES`): one asset per stage, as
Dagster's asset factories do. Each asset reads its inputs, calls the stage's ``run`` with the settings
resource and the step's logger (between a pull and a push of the data folder where a store is configured:
:class:`pipelines.resources.DataStoreResource`), and returns the typed result with its metadata
(:meth:`adt.results.StageResult.metadata` through :func:`pipelines.metadata.dagster_metadata`) and its
content key as the data version. Partitioned stages have one partition per dataset; an unpartitioned stage
reads a partitioned one as ``{dataset: result}`` over the partitions materialized (all, or those its
entry names).
"""


from typing import Any

import dagster as dg

from adt.data.datasets import DATASETS, get_module
from adt.data.download import DownloadError
from adt.results import StageResult
from adt.stages import BY_NAME, STAGES, Stage, call
from pipelines.metadata import dagster_metadata

#: One partition per dataset (raw_dataset, dataset_tables): adding a dataset computes only its partitions.
dataset_partitions = dg.StaticPartitionsDefinition(list(DATASETS))


def _progress_logger(log):
    def report(name: str, done: int, total: int | None) -> None:
        share = f" of {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)" if total else " MiB"
        log.info(f"{name}: {done / 2**20:.1f}{share}")
    return report


def _asset_in(stage: Stage, name: str) -> dg.AssetIn:
    """How ``stage`` reads input ``name``: a partitioned stage into an unpartitioned one through all its
    partitions (or those of ``stage.partitions``), the missing ones skipped."""
    if BY_NAME[name].partitioned and not stage.partitioned:
        wanted = stage.partitions.get(name)
        mapping = dg.SpecificPartitionsPartitionMapping(list(wanted)) if wanted else dg.AllPartitionMapping()
        return dg.AssetIn(name, partition_mapping=mapping, metadata={"allow_missing_partitions": True})
    return dg.AssetIn(name)


def _per_partition(context: dg.AssetExecutionContext, name: str, value: Any) -> dict[str, Any]:
    """A partitioned input as ``{partition: result}`` (the I/O manager gives one partition's value alone)."""
    if value is None:
        return {}
    if isinstance(value, StageResult):
        return {context.asset_partition_keys_for_input(name)[0]: value}
    return dict(value)


def _failure(stage: Stage, partition: str | None, exc: Exception) -> dg.Failure:
    """A stage's error as a Dagster failure that says what to do (a download's: not retried, with where to get it)."""
    if isinstance(exc, DownloadError) and partition:
        module = get_module(partition)
        return dg.Failure(description=str(exc), allow_retries=False,
                          metadata={"homepage": getattr(module, "HOMEPAGE", ""),
                                    "access": getattr(module, "ACCESS", "open"),
                                    "files": [r.filename for r in module.REMOTES]})
    return dg.Failure(str(exc))


def stage_asset(stage: Stage) -> dg.AssetsDefinition:
    """The asset of ``stage`` (module docstring)."""

    @dg.asset(name=stage.name, ins={name: _asset_in(stage, name) for name in stage.inputs},
              deps=list(stage.deps), group_name=stage.group, code_version=stage.version,
              description=stage.description, partitions_def=dataset_partitions if stage.partitioned else None,
              tags={"adt/stage": "training"} if stage.training else None,
              required_resource_keys={"settings", "data_store"})
    def compute(context: dg.AssetExecutionContext, **inputs):
        inputs = {n: _per_partition(context, n, v) if BY_NAME[n].partitioned and not stage.partitioned else v
                  for n, v in inputs.items()}
        partition = context.partition_key if stage.partitioned else None
        extra = {"partition": partition, "on_progress": _progress_logger(context.log)} if partition else {}
        context.resources.data_store.pull(stage.name, context.log.info)
        try:
            result = call(stage, context.resources.settings.settings(), inputs, context.log.info, **extra)
        except (ValueError, DownloadError) as exc:
            raise _failure(stage, partition, exc) from None
        context.resources.data_store.push(context.log.info)  # before the value is stored: a next step may start
        return dg.Output(result, data_version=dg.DataVersion(result.key),
                         metadata=dagster_metadata(result.metadata()))

    return compute


#: Every stage's asset, in graph order.
STAGE_ASSETS = [stage_asset(stage) for stage in STAGES]
#: Stage name -> its asset.
ASSET = {stage.name: asset for stage, asset in zip(STAGES, STAGE_ASSETS)}
