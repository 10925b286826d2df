"""Write tests/k8s_schema.json: the fields (and which are required) of the Kubernetes objects deploy/k8s/ uses,
pinned from the official Kubernetes Python client's models, for tests/test_k8s_manifests.py (which then needs no
cluster, no kubectl and no Kubernetes client).

Usage (the client is not a dependency of the project; install it aside):
    pip install --target /tmp/k8s-client --no-deps kubernetes==36.0.3
    PYTHONPATH=/tmp/k8s-client .venv/bin/python scripts/k8s_schema.py

Each model: ``{"fields": {camelCase name: type}, "required": [names]}``, types as the client writes them
(``str``, ``int``, ``bool``, ``object``, ``list[V1Container]``, ``dict[str, str]``, a model's name). A field is
required where the model's setter refuses None (the client's own client-side validation).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

#: (apiVersion, kind) of every object deploy/k8s/ may hold -> its model.
KINDS = {
    "v1/Namespace": "V1Namespace", "v1/ConfigMap": "V1ConfigMap", "v1/Secret": "V1Secret",
    "v1/Service": "V1Service", "v1/ServiceAccount": "V1ServiceAccount",
    "v1/PersistentVolumeClaim": "V1PersistentVolumeClaim", "apps/v1/Deployment": "V1Deployment",
    "apps/v1/StatefulSet": "V1StatefulSet", "rbac.authorization.k8s.io/v1/Role": "V1Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "V1RoleBinding",
}
SCALARS = {"str", "int", "bool", "float", "object", "datetime", "date"}


def inner_types(type_name: str) -> list[str]:
    """The model names inside a client type string (``list[V1Container]`` -> ``V1Container``)."""
    return [t for t in re.findall(r"[A-Za-z0-9_]+", type_name) if t not in SCALARS | {"list", "dict"}]


def main() -> None:
    import kubernetes
    import kubernetes.client as k

    models, todo = {}, list(KINDS.values())
    while todo:
        name = todo.pop()
        if name in models:
            continue
        model = getattr(k, name)
        required = [model.attribute_map[a] for a in model.openapi_types
                    if "must not be `None`" in inspect.getsource(getattr(model, a).fset)]
        models[name] = {"fields": {model.attribute_map[a]: t for a, t in model.openapi_types.items()},
                        "required": sorted(required)}
        todo += [t for t in map(str, model.openapi_types.values()) for t in inner_types(t)]
    out = Path(__file__).resolve().parents[1] / "tests" / "k8s_schema.json"
    out.write_text(json.dumps({"source": f"kubernetes Python client {kubernetes.__version__}", "kinds": KINDS,
                               "models": dict(sorted(models.items()))}, indent=0, sort_keys=True) + "\n")
    print(f"{out}: {len(models)} models from kubernetes {kubernetes.__version__}")


if __name__ == "__main__":
    main()
