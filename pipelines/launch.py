"""Runs of the code location's jobs, executed in this process but recorded as the UI records its own.

``dagster.execute_job`` (Dagster's public API for a headless run) records a run without a code-location
origin: the UI lists it under Runs, but the Overview timeline, the job's run history and an asset's "latest
run" look runs up by their origin (the run's ``remote_job_origin`` and its ``.dagster/repository`` tag), so
they never showed ``make demo``'s runs. :func:`execute` does what ``execute_job`` does, plus the origin that
``dagster job launch`` or a launch from the UI records: code location ``pipelines`` (``dagster dev -m
pipelines``, :data:`LOCATION`), repository ``__repository__`` (the one a ``dagster.Definitions`` makes).
Dagster has no public call for this: its internals are used in :func:`_run_with_origin` alone, which says
what the public API lacks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg

#: The code location's name in the workspace of ``make ui`` (``dagster dev -m pipelines``: the module's name).
LOCATION = "pipelines"
#: The repository a ``dagster.Definitions`` object makes.
REPOSITORY = "__repository__"


def job_named(name: str) -> dg.JobDefinition:
    """The job ``name`` of the code location (:func:`dagster.build_reconstructable_job`'s target)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def(name)


def execute(job: str, instance: dg.DagsterInstance, run_config: Mapping, tags: Mapping[str, str],
            asset_selection: Iterable[dg.AssetKey], check_selection: Iterable[dg.AssetCheckKey] | None = None
            ) -> dg.JobExecutionResult:
    """Run ``job`` for ``asset_selection`` in this process, synchronously, as a run of the code location.

    What ``dagster.execute_job`` does (the job's own tags merged under ``tags``, a reconstructable job so a
    multiprocess executor can load it), plus the code location's origin (the UI's timeline, job history and
    Re-execute find the run) and ``check_selection`` (None: every check of the selected assets;
    ``execute_job`` cannot choose): :func:`_run_with_origin`.

    Returns:
        Dagster's result (``success``, the step failures), as ``execute_job`` returns it.
    """
    recon = dg.build_reconstructable_job("pipelines.launch", "job_named", (job,))
    definition = recon.get_definition()
    assets = frozenset(asset_selection)
    checks = frozenset(check_selection) if check_selection is not None else None
    subset = definition.get_subset(asset_selection=assets, asset_check_selection=checks)
    return _run_with_origin(definition.name, recon, subset, instance, dict(run_config),
                            {**definition.run_tags, **tags}, assets, checks)


def _run_with_origin(job: str, recon, subset: dg.JobDefinition, instance: dg.DagsterInstance, run_config: dict,
                     tags: Mapping[str, str], assets: frozenset, checks: frozenset | None
                     ) -> dg.JobExecutionResult:
    """Create the run of ``subset`` (of ``job``, reconstructable as ``recon``) as
    ``DagsterInstance.create_run_for_job`` creates it, plus ``checks`` and the origin of a run launched from the
    workspace of ``dagster dev -m pipelines`` (code location :data:`LOCATION` served by a managed gRPC server
    from this checkout with this interpreter, repository :data:`REPOSITORY`); then execute it here, as
    ``execute_job`` does.

    The one use of Dagster internals in this module, for want of a public call: ``dagster.execute_job`` and
    ``JobDefinition.execute_in_process`` take neither a ``remote_job_origin`` nor an ``asset_check_selection``
    (``dagster job execute`` and ``dagster asset materialize`` are ``execute_job``); ``DagsterInstance.create_run``
    and ``create_run_for_job`` (which take the origin; the latter drops a check selection), ``execute_run`` (which
    executes a created run) and the origin classes (``RemoteJobOrigin``, ``RemoteRepositoryOrigin``,
    ``ManagedGrpcPythonEnvCodeLocationOrigin``, ``LoadableTargetOrigin``) are not public API. The public routes
    that record the origin hand the run to the instance's run launcher (another process, asynchronously, with the
    console lines there, and a ``DAGSTER_HOME`` instance only): ``dagster job launch -m pipelines`` (no asset or
    check selection, ``--op-selection`` only) and ``DagsterGraphQLClient.submit_job_execution`` (a running
    webserver; no check selection). A Dagster that moves these internals fails here with a RuntimeError.
    """
    try:
        from dagster._core.execution.api import create_execution_plan, execute_run
        from dagster._core.remote_origin import (ManagedGrpcPythonEnvCodeLocationOrigin, RemoteJobOrigin,
                                                 RemoteRepositoryOrigin)
        from dagster._core.snap import snapshot_from_execution_plan
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    except ImportError as exc:
        raise RuntimeError(f"this Dagster ({dg.__version__}) moved what pipelines.launch uses to record a run of "
                           f"the code location ({exc}); update pipelines.launch._run_with_origin") from exc

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=LOCATION,
                                  working_directory=str(Path(__file__).resolve().parents[1]))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, location_name=LOCATION)
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY), job)
    plan = create_execution_plan(subset, run_config=run_config, tags=tags,
                                 instance_ref=instance.get_ref() if instance.is_persistent else None)
    run = instance.create_run(
        job_name=job, run_id=None, run_config=run_config, status=None, tags=tags,
        root_run_id=None, parent_run_id=None, step_keys_to_execute=plan.step_keys_to_execute,
        execution_plan_snapshot=snapshot_from_execution_plan(plan, subset.get_job_snapshot_id()),
        job_snapshot=subset.get_job_snapshot(), parent_job_snapshot=subset.get_parent_job_snapshot(),
        asset_selection=assets, asset_check_selection=checks, resolved_op_selection=None, op_selection=None,
        remote_job_origin=origin, job_code_origin=recon.get_python_origin(), asset_graph=subset.asset_layer.asset_graph)
    return execute_run(recon, run, instance)
