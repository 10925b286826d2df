"""Resources injected into the assets."""

import contextlib
import os
from collections.abc import Callable

import dagster as dg
from pydantic import Field

from adt.config import Profile, Settings
from adt.data_store import STORE_ENV, DataStore, StoreMismatch
from adt.stages import needed

_DEFAULTS = Settings.from_env()


class AdtSettings(dg.ConfigurableResource):
    """The run configuration (:class:`adt.config.Settings`, whose docstring explains each
    field) as a Dagster resource, so the launchpad can set it; defaults from the environment."""

    profile: str = _DEFAULTS.profile
    mirror: str = _DEFAULTS.mirror
    quantization_thresholds: dict[str, float] = _DEFAULTS.quantization_thresholds
    max_unquantizable_ratio: float = _DEFAULTS.max_unquantizable_ratio
    beat_input: str = _DEFAULTS.beat_input
    tatum_subdivisions: int = _DEFAULTS.tatum_subdivisions
    optuna_storage: str = _DEFAULTS.optuna_storage
    feature_type: str = _DEFAULTS.feature_type
    target_widening: bool = _DEFAULTS.target_widening
    loss_weighting: str = _DEFAULTS.loss_weighting

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Take the data folder's lock for the run (:mod:`adt.lock`: one writer per data folder), tag the run
        with its process (:func:`pipelines.automation.record_run_process`: the dead-run sensor tells it from a
        reused pid; not from a step in a Celery worker, :mod:`pipelines.celery_workers`), tag it with its settings'
        fingerprint (:data:`pipelines.plan.SETTINGS_TAG`: a run launched from the UI, a schedule or a sensor is then
        judged stale or current by ``make demo`` as its own runs are) and name the run to the library, so its MLflow
        runs link back to it (:func:`adt.tracking.provenance`)."""
        from adt.lock import DataFolderBusy, acquire
        from adt.tracking import DAGSTER_RUN_ENV
        from pipelines.automation import record_run_process
        from pipelines.celery_workers import CELERY_WORKER_ENV
        from pipelines.plan import SETTINGS_TAG, settings_fingerprint

        run_id = context.run.run_id if context.run is not None else None
        try:
            acquire(f"Dagster run {run_id}")
        except DataFolderBusy as exc:
            raise dg.Failure(str(exc)) from None
        if run_id:
            os.environ[DAGSTER_RUN_ENV] = run_id
            if context.instance is not None:
                if not os.environ.get(CELERY_WORKER_ENV):  # a Celery worker's step process is not the run's
                    record_run_process(context.instance, run_id)
                if context.run.tags.get(SETTINGS_TAG) != (fingerprint := settings_fingerprint(self.settings())):
                    context.instance.add_run_tags(run_id, {SETTINGS_TAG: fingerprint})

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        from adt.lock import release
        from adt.tracking import DAGSTER_RUN_ENV

        os.environ.pop(DAGSTER_RUN_ENV, None)
        release()

    def settings(self) -> Settings:
        """The library's :class:`adt.config.Settings` with these values.

        Raises:
            dagster.Failure: a value the library does not accept (the message names it).
        """
        try:
            return Settings(**{f: getattr(self, f) for f in Settings.__dataclass_fields__}).validate()
        except ValueError as exc:
            raise dg.Failure(f"AdtSettings: {exc}") from None

    def get_profile(self) -> Profile:
        return self.settings().get_profile()

    def get_mirror(self) -> str | None:
        return self.mirror or None


class DataStoreResource(dg.ConfigurableResource):
    """The data folder through an artifact store (:mod:`adt.data_store`), for steps on machines that share no
    folder (docs/scale-out.md): each step pulls the files of the stages upstream of it before it runs and pushes
    what it wrote before its value is stored. ``uri`` empty (``ADT_DATA_STORE`` unset, the default): nothing moves."""

    uri: str = Field(default=os.environ.get(STORE_ENV, ""),
                     description="MLflow artifact URI of the store (mlflow-artifacts:/adt-data, s3://bucket/adt-data, "
                                 "file:///srv/adt-data); default ADT_DATA_STORE, empty: no store.")

    def _store(self) -> DataStore | None:
        return DataStore(self.uri) if self.uri else None

    def pull(self, stage: str, log: Callable[[str], None], upstream: bool = True) -> None:
        """Fetch what ``stage`` and the stages upstream of it wrote elsewhere (:func:`adt.stages.needed`), or, with
        ``upstream`` False, what ``stage`` alone wrote (a check that reads one stage's files).

        Raises:
            dagster.Failure: the store belongs to a folder at another path, or cannot be read (named).
        """
        if (store := self._store()) is not None:
            with _failure("pull from", self.uri):
                store.pull(needed(stage) if upstream else [stage], log)

    def push(self, log: Callable[[str], None]) -> None:
        """Upload what changed in the data folder.

        Raises:
            dagster.Failure: the store belongs to a folder at another path, or cannot be written (named).
        """
        if (store := self._store()) is not None:
            with _failure("push to", self.uri):
                store.push(log)


@contextlib.contextmanager
def _failure(doing: str, uri: str):
    """A store's error as a Dagster failure naming the store and what was done."""
    try:
        yield
    except StoreMismatch as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    except Exception as exc:  # noqa: BLE001 - the artifact repositories raise their own errors
        raise dg.Failure(f"data store: cannot {doing} {uri}: {exc}") from exc
