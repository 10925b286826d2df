"""deploy/k8s/ (the pipeline on Kubernetes, docs/scale-out.md) and deploy/Dockerfile, checked without a cluster.

``kubectl apply --dry-run=client`` needs an API server even so (it maps kinds through the server's discovery), so
the manifests are checked here against a pinned copy of the Kubernetes schema instead: tests/k8s_schema.json, the
fields and required fields of every object used, written by scripts/k8s_schema.py from the official Kubernetes
Python client's models. Where ``kubectl`` is installed, ``kubectl kustomize`` (offline) renders the kustomization
and the rendered objects are checked too. Beyond the schema: every name a manifest refers to exists (ConfigMaps,
Secrets and their keys, volumes, claims, accounts, Service selectors and ports, the workspace's server, the
databases in the URLs), and the data folder is each pod's own (an emptyDir; the files travel through
ADT_DATA_STORE, the MLflow server's artifact store). The Dagster side: the instance file passes Dagster's instance
schema, its run launcher and the executor settings pass a pinned copy of dagster-k8s 0.29.27's config schema (and
the real one where dagster-k8s is installed: it is not a test dependency).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SCHEMA = json.loads((Path(__file__).with_name("k8s_schema.json")).read_text())
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def manifests() -> list[dict]:
    """Every object of the kustomization's resources, in order."""
    return [doc for name in kustomization()["resources"] for doc in yaml.safe_load_all((K8S / name).read_text())
            if doc]


def schema_errors(data, type_name: str, where: str) -> list[str]:
    """What in ``data`` does not fit the pinned model ``type_name``: unknown fields, missing required ones,
    wrong scalar types, lists and maps that are not."""
    if type_name == "object":
        return []
    if type_name in SCALARS:
        ok = isinstance(data, SCALARS[type_name]) and not (type_name != "bool" and isinstance(data, bool))
        return [] if ok else [f"{where}: {data!r} is not a {type_name}"]
    if m := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(data, list):
            return [f"{where}: not a list"]
        return [e for i, item in enumerate(data) for e in schema_errors(item, m.group(1), f"{where}[{i}]")]
    if m := re.fullmatch(r"dict\[(\w+), (.+)\]", type_name):
        if not isinstance(data, dict):
            return [f"{where}: not a mapping"]
        return [e for key, item in data.items() for e in schema_errors(item, m.group(2), f"{where}.{key}")]
    model = SCHEMA["models"][type_name]
    if not isinstance(data, dict):
        return [f"{where}: not a mapping ({type_name})"]
    errors = [f"{where}: missing required {r!r} ({type_name})" for r in model["required"] if r not in data]
    for key, item in data.items():
        if key not in model["fields"]:
            errors.append(f"{where}: unknown field {key!r} ({type_name})")
        else:
            errors += schema_errors(item, model["fields"][key], f"{where}.{key}")
    return errors


def object_errors(doc: dict) -> list[str]:
    kind = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    if kind not in SCHEMA["kinds"]:
        return [f"{kind}: not a kind deploy/k8s/ uses (tests/k8s_schema.json: {sorted(SCHEMA['kinds'])})"]
    return schema_errors(doc, SCHEMA["kinds"][kind], f"{doc['kind']}/{doc.get('metadata', {}).get('name')}")


def test_every_manifest_fits_the_pinned_kubernetes_schema():
    listed = set(kustomization()["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}  # none forgotten
    docs = manifests()
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap",
                                         "PersistentVolumeClaim", "StatefulSet", "Service", "Deployment"}
    assert [e for d in docs for e in object_errors(d)] == []
    assert SCHEMA["source"].startswith("kubernetes Python client")


def test_the_schema_check_finds_mistakes():
    """The check is not vacuous: a misspelt field, a missing required one, a string for a number, a list for a
    mapping are each reported where they are."""
    deployment = next(d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "adt-user-code")
    bad = copy.deepcopy(deployment)
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPrt"] = container["ports"][0].pop("containerPort")
    del container["name"]
    bad["spec"]["replicas"] = "two"
    bad["spec"]["selector"] = [bad["spec"]["selector"]]
    errors = "\n".join(object_errors(bad))
    assert "ports[0]: unknown field 'containerPrt'" in errors and "ports[0]: missing required 'containerPort'" in errors
    assert "containers[0]: missing required 'name'" in errors
    assert "spec.replicas: 'two' is not a int" in errors and "spec.selector: not a mapping" in errors
    assert object_errors({"apiVersion": "apps/v1beta1", "kind": "Deployment"})[0].startswith("apps/v1beta1/Deployment")


def _named(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod_specs(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def service_selects(service: dict, template: dict) -> bool:
    return service["spec"]["selector"].items() <= template["metadata"]["labels"].items()


def test_every_reference_resolves():
    """What one object names exists: ConfigMaps (also the generated ones), Secrets and their keys, claims (and
    volume claim templates), volumes, the service account, the Role; each workload selects its own pods; each
    Service selects a workload and targets a port it names."""
    docs = manifests()
    config_maps = set(_named(docs, "ConfigMap")) | {g["name"] for g in kustomization()["configMapGenerator"]}
    secrets = {name: set(d.get("stringData", {})) | set(d.get("data", {}))
               for name, d in _named(docs, "Secret").items()}
    claims = set(_named(docs, "PersistentVolumeClaim"))
    accounts = set(_named(docs, "ServiceAccount"))
    for name, template in _pod_specs(docs).items():
        workload = next(d for d in docs if d["metadata"]["name"] == name and d["kind"] in ("Deployment", "StatefulSet"))
        assert workload["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), name
        spec = template["spec"]
        assert "serviceAccountName" not in spec or spec["serviceAccountName"] in accounts, name
        volumes = {v["name"] for v in spec.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for v in spec.get("volumes", []):
            assert "configMap" not in v or v["configMap"]["name"] in config_maps, (name, v)
            assert "persistentVolumeClaim" not in v or v["persistentVolumeClaim"]["claimName"] in claims, (name, v)
        for c in spec["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes, (name, c["name"])
            for source in c.get("envFrom", []):
                assert "configMapRef" not in source or source["configMapRef"]["name"] in config_maps, (name, source)
                assert "secretRef" not in source or source["secretRef"]["name"] in secrets, (name, source)
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                assert ref is None or ref["key"] in secrets.get(ref["name"], ()), (name, env)
    for name, service in _named(docs, "Service").items():
        targets = [t for t in _pod_specs(docs).values() if service_selects(service, t)]
        assert len(targets) == 1, name
        ports = {p["name"] for c in targets[0]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    binding = _named(docs, "RoleBinding")["adt-dagster"]
    assert binding["roleRef"]["name"] in _named(docs, "Role")
    assert {s["name"] for s in binding["subjects"]} <= accounts


def test_the_configuration_points_at_the_services():
    """The workspace names the user-code Service and port; MLflow's URI the MLflow Service, and the data folder's
    store (ADT_DATA_STORE) an ``mlflow-artifacts:`` URI, which that server proxies (it runs with
    ``--artifacts-destination``); every PostgreSQL URL the PostgreSQL Service, with a database the server creates
    (POSTGRES_DB, config/create-databases.sql); the run launcher's and the executor's namespace is the
    kustomization's, and every name they mount or read exists."""
    docs = manifests()
    services = {name: {p["port"] for p in d["spec"]["ports"]} for name, d in _named(docs, "Service").items()}
    workspace = yaml.safe_load((K8S / "config" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert workspace["port"] in services[workspace["host"]]
    env = _named(docs, "ConfigMap")["adt-env"]["data"]
    mlflow = re.fullmatch(r"http://([\w-]+):(\d+)", env["MLFLOW_TRACKING_URI"])
    assert mlflow and int(mlflow.group(2)) in services[mlflow.group(1)]
    assert re.fullmatch(r"mlflow-artifacts:/[\w/-]+", env["ADT_DATA_STORE"]), env["ADT_DATA_STORE"]
    server = next(t for t in _pod_specs(docs).values()
                  if service_selects(_named(docs, "Service")[mlflow.group(1)], t))["spec"]["containers"][0]["command"]
    assert server[:2] == ["mlflow", "server"] and "--artifacts-destination" in server
    assert "--no-serve-artifacts" not in server
    postgres = _pod_specs(docs)["adt-postgres"]["spec"]["containers"][0]
    databases = {e["value"] for e in postgres["env"] if e["name"] == "POSTGRES_DB"} | set(
        re.findall(r"CREATE DATABASE (\w+)", (K8S / "config" / "create-databases.sql").read_text()))
    for key, url in _named(docs, "Secret")["adt-secrets"]["stringData"].items():
        if key.endswith(("_URL", "_URI", "_STORAGE")):
            m = re.fullmatch(r"postgresql\+psycopg2://adt:[^@]+@([\w-]+):(\d+)/(\w+)", url)
            assert m and int(m.group(2)) in services[m.group(1)] and m.group(3) in databases, key
    instance = yaml.safe_load((K8S / "config" / "instance.yaml").read_text())
    launcher = instance["run_launcher"]["config"]
    executor = yaml.safe_load((K8S / "config" / "executor.yaml").read_text())["execution"]["config"]
    assert launcher["job_namespace"] == executor["job_namespace"] == kustomization()["namespace"]
    assert launcher["instance_config_map"] in {g["name"] for g in kustomization()["configMapGenerator"]}
    assert set(launcher["env_config_maps"]) <= set(_named(docs, "ConfigMap"))
    assert set(launcher["env_secrets"]) <= set(_named(docs, "Secret"))
    assert launcher["service_account_name"] in _named(docs, "ServiceAccount")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in launcher["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= set(_named(docs, "PersistentVolumeClaim"))
    assert {m["name"] for m in launcher["volume_mounts"]} <= {v["name"] for v in launcher["volumes"]}
    assert launcher["dagster_home"] == env["DAGSTER_HOME"] and env["ADT_EXECUTOR"] == "k8s"


def data_folder_volumes(docs: list[dict], launcher: dict, executor: dict, data_dir: str) -> dict[str, dict]:
    """Where the data folder ``data_dir`` is mounted -> the volume mounted there: each workload's containers, the
    run launcher (its run pods and, inherited, the step pods) and the executor's own settings (the step pods)."""
    found = {}
    for name, template in _pod_specs(docs).items():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for c in template["spec"]["containers"]:
            for m in c.get("volumeMounts", []):
                if m["mountPath"] == data_dir:
                    found[f"{name}/{c['name']}"] = volumes[m["name"]]
    for where, config in (("run launcher", launcher), ("executor", executor)):
        volumes = {v["name"]: v for v in launcher.get("volumes", []) + config.get("volumes", [])}
        for m in config.get("volume_mounts", []):
            if m["mount_path"] == data_dir:
                found[where] = volumes[m["name"]]
    return found


def test_the_data_folder_is_each_pods_own():
    """No ReadWriteMany claim any more: wherever the data folder (ADT_DATA_DIR, the image's too) is mounted (the
    user-code server, the run launcher's pods, the executor's step pods, which take the run launcher's volumes
    plus any of the executor's own), it is an emptyDir of that pod; the steps' files travel through
    ADT_DATA_STORE. A claim there is reported."""
    docs = manifests()
    claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"] + [
        t for d in docs if d["kind"] == "StatefulSet" for t in d["spec"].get("volumeClaimTemplates", [])]
    assert [c["metadata"]["name"] for c in claims if "ReadWriteMany" in c["spec"]["accessModes"]] == []
    env = _named(docs, "ConfigMap")["adt-env"]["data"]
    data_dir = env["ADT_DATA_DIR"]
    assert re.search(rf"^\s*ADT_DATA_DIR={re.escape(data_dir)} ", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    launcher = yaml.safe_load((K8S / "config" / "instance.yaml").read_text())["run_launcher"]["config"]
    executor = yaml.safe_load((K8S / "config" / "executor.yaml").read_text())["execution"]["config"]
    mounted = data_folder_volumes(docs, launcher, executor, data_dir)
    assert {"adt-user-code/user-code", "run launcher"} <= set(mounted)
    assert {where: sorted(set(v) - {"name"}) for where, v in mounted.items()} == {
        where: ["emptyDir"] for where in mounted}
    assert executor["max_concurrent"] > 1  # each step pod its own folder and lock: steps of a run at once
    pvc = {"name": "data", "persistentVolumeClaim": {"claimName": "adt-data"}}
    assert data_folder_volumes(docs, {**launcher, "volumes": [pvc]}, executor, data_dir)["run launcher"] == pvc


def test_kustomize_renders_offline():
    """``kubectl kustomize deploy/k8s`` (no server needed): every object in namespace adt, the generated
    ConfigMaps there, the steps' image (DAGSTER_CURRENT_IMAGE) the user-code server's own, and the rendered objects
    fit the schema."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the kustomization is not rendered (the manifests are still checked "
                    "one by one against the pinned schema)")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert all(d["metadata"].get("namespace") == "adt" for d in docs if d["kind"] != "Namespace")
    assert {"adt-instance", "adt-workspace", "adt-postgres-init"} <= set(_named(docs, "ConfigMap"))
    user_code = _pod_specs(docs)["adt-user-code"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in user_code["env"]}["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    assert [e for d in docs for e in object_errors(d)] == []


#: dagster-k8s 0.29.27's settings of a Kubernetes Job (DagsterK8sJobConfig.config_type_job), pinned: their names and
#: the types of those deploy/k8s/config/ sets (the others are any value here).
JOB_FIELDS = ("job_image", "image_pull_policy", "image_pull_secrets", "service_account_name", "env_config_maps",
              "env_secrets", "env_vars", "volume_mounts", "volumes", "labels", "resources", "scheduler_name",
              "security_context")
#: ... and the k8s_job_executor's own (dagster_k8s.executor._K8S_EXECUTOR_CONFIG_SCHEMA) ...
EXECUTOR_FIELDS = JOB_FIELDS + ("load_incluster_config", "kubeconfig_file", "job_namespace", "retries",
                                "max_concurrent", "tag_concurrency_limits", "step_k8s_config", "per_step_k8s_config",
                                "enable_owner_references", "step_dependency_config")
#: ... and the K8sRunLauncher's (DagsterK8sJobConfig.config_type_run_launcher; instance_config_map required).
LAUNCHER_FIELDS = JOB_FIELDS + ("instance_config_map", "postgres_password_secret", "dagster_home",
                                "load_incluster_config", "kubeconfig_file", "k8s_api_ssl_ca_cert_file",
                                "fail_pod_on_run_failure", "run_k8s_config", "job_namespace",
                                "only_allow_user_defined_k8s_config_fields", "only_allow_user_defined_env_vars")


def pinned_schema(names: tuple[str, ...], required: tuple[str, ...] = ()):
    """A Dagster config schema with the pinned field ``names`` (module constants)."""
    import dagster as dg

    k8s_dict = dg.Permissive()
    types = {"job_namespace": dg.StringSource, "instance_config_map": dg.StringSource, "dagster_home": dg.StringSource,
             "service_account_name": dg.StringSource, "max_concurrent": dg.IntSource, "load_incluster_config": bool,
             "env_config_maps": [dg.StringSource], "env_secrets": [dg.StringSource],
             "volume_mounts": [dg.Permissive({"name": dg.StringSource, "mount_path": dg.StringSource})],
             "volumes": [dg.Permissive({"name": str})],
             "resources": {"limits": dg.Field(dict, is_required=False), "requests": dg.Field(dict, is_required=False)},
             "run_k8s_config": dg.Shape({k: dg.Field(k8s_dict, is_required=False) for k in (
                 "container_config", "pod_template_spec_metadata", "pod_spec_config", "job_config", "job_metadata",
                 "job_spec_config")})}
    return dg.Shape({n: dg.Field(types.get(n, dg.Any), is_required=n in required) for n in names})


def test_dagster_settings_fit_dagster_k8s(monkeypatch):
    """config/instance.yaml passes Dagster's instance schema and its run launcher the pinned K8sRunLauncher schema;
    config/executor.yaml the pinned k8s_job_executor schema; a misspelt or missing field is refused. With dagster-k8s
    installed, the real schemas agree (and have the pinned names); without it, ``ADT_EXECUTOR=k8s`` says to install
    ``.[k8s]``."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    monkeypatch.setenv("ADT_DAGSTER_PG_URL", "postgresql+psycopg2://adt:pw@adt-postgres:5432/dagster")
    instance = yaml.safe_load((K8S / "config" / "instance.yaml").read_text())
    checked = process_config(dagster_instance_config_schema(), instance)
    assert checked.success, checked.errors
    assert instance["run_launcher"] == {**instance["run_launcher"], "module": "dagster_k8s", "class": "K8sRunLauncher"}
    launcher = instance["run_launcher"]["config"]
    executor = yaml.safe_load((K8S / "config" / "executor.yaml").read_text())["execution"]["config"]
    launcher_schema = pinned_schema(LAUNCHER_FIELDS, required=("instance_config_map",))
    assert process_config(launcher_schema, launcher).success
    assert process_config(pinned_schema(EXECUTOR_FIELDS), executor).success
    assert not process_config(pinned_schema(EXECUTOR_FIELDS), {**executor, "max_concurent": 2}).success
    unnamed = {k: v for k, v in launcher.items() if k != "instance_config_map"}
    assert not process_config(launcher_schema, unnamed).success

    try:
        import dagster_k8s
    except ImportError:
        from pipelines.definitions import executor_from_env

        monkeypatch.setenv("ADT_EXECUTOR", "k8s")
        with pytest.raises(ValueError, match=r"ADT_EXECUTOR=k8s needs dagster_k8s: pip install -e '\.\[k8s\]'"):
            executor_from_env()
        return
    from dagster._config import resolve_to_config_type

    real_executor = dagster_k8s.k8s_job_executor.config_schema.config_type
    real_launcher = resolve_to_config_type(dagster_k8s.K8sRunLauncher.config_type())
    assert set(real_executor.fields) == set(EXECUTOR_FIELDS) and set(real_launcher.fields) == set(LAUNCHER_FIELDS)
    assert process_config(real_executor, executor).success and process_config(real_launcher, launcher).success


def test_the_image_installs_what_the_manifests_run():
    """deploy/Dockerfile: a pinned base, the project installed by scripts/install.sh without its apt-get steps plus
    ``.[k8s]``, a non-root user; every command the manifests run is one the project's venv has (the image's venv
    is made the same way)."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert "ADT_NO_APT=1 VENV=/opt/venv bash scripts/install.sh" in dockerfile and '".[k8s]"' in dockerfile
    assert re.search(r"^USER 1000$", dockerfile, re.M)
    assert "ADT_NO_APT" in (ROOT / "scripts" / "install.sh").read_text()
    assert "k8s = [\"dagster-k8s==0.29.27\"]" in (ROOT / "pyproject.toml").read_text()
    commands = {c["command"][0] for t in _pod_specs(manifests()).values() for c in t["spec"]["containers"]
                if "command" in c}
    assert commands == {"dagster", "dagster-webserver", "dagster-daemon", "mlflow"}
    venv = Path(sys.executable).parent
    assert all((venv / c).is_file() for c in commands), [c for c in commands if not (venv / c).is_file()]


def test_the_dead_run_sensor_leaves_kubernetes_runs_to_dagster(monkeypatch):
    """On an instance whose run launcher is dagster-k8s's, the dead-run sensor (which judges a run by a pid on its
    own host) skips, saying why: each run is a pod elsewhere, watched by Dagster's run monitoring."""
    import dagster as dg

    from pipelines import automation

    class K8sRunLauncher:  # stands for dagster_k8s.K8sRunLauncher (by its name, as the sensor checks)
        pass

    called = []
    monkeypatch.setattr(automation, "fail_dead_runs", lambda instance: called.append(instance) or [])
    with dg.instance_for_test() as instance:
        monkeypatch.setattr(type(instance), "run_launcher", property(lambda self: K8sRunLauncher()))
        skipped = automation.dead_run_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(skipped, dg.SkipReason) and "Kubernetes Jobs" in skipped.skip_message and called == []
