"""deploy/kubernetes: schema-valid manifests that fit together.

The RayCluster is validated against KubeRay's CRD schema (the copy vendored in
deploy/kubernetes/schemas/), the core kinds against Kubernetes' own schemas (kubernetes-validate,
offline). Both in strict mode, as `kubectl apply` validates by default: a field the schema does not
know is an error, not silently dropped. The mutation tests show each check rejects a broken
manifest. The wiring tests check what no schema can: names that must match across manifests.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
CRD = MANIFESTS / "schemas" / "ray.io_rayclusters.yaml"
SHARED_CRD = ROOT.parent / "shared" / "schemas" / "kuberay" / "ray.io_rayclusters.yaml"
K8S_VERSION = "1.33.0"  # the Kubernetes API the core manifests are checked against
SECRET = "rldojo-secrets"
Document = dict[str, Any]


def _kustomization() -> Document:
    data: Document = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return data


def documents() -> list[Document]:
    """Every object `kubectl apply -k deploy/kubernetes` would create, in order."""
    found: list[Document] = []
    for resource in _kustomization()["resources"]:
        found += [d for d in yaml.safe_load_all((MANIFESTS / resource).read_text()) if d]
    return found


def one(kind: str, name: str | None = None) -> Document:
    [match] = [
        d for d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    return match


def _closed(node: Any) -> Any:
    """A structural schema made strict: objects with declared properties reject unknown fields."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if "properties" in node:
        out["properties"] = {key: _closed(value) for key, value in node["properties"].items()}
        if "additionalProperties" not in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = _closed(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [_closed(branch) for branch in node[key]]
    return out


@cache
def raycluster_validator() -> jsonschema.protocols.Validator:
    # libyaml's loader where present: the CRD is 930 kB, slow for the pure-Python one.
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    [version] = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"]["enum"] = [f"{crd['spec']['group']}/{version['name']}"]
    schema["properties"]["kind"]["enum"] = [crd["spec"]["names"]["kind"]]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(document: Document) -> None:
    """Raise jsonschema.ValidationError when `document` is not a valid object of its kind."""
    if document["kind"] == "RayCluster":
        raycluster_validator().validate(document)
    else:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def containers(document: Document) -> Iterator[tuple[Document, Document]]:
    """(pod spec, container) for every pod template in a Deployment/StatefulSet/RayCluster."""
    spec = document["spec"]
    if document["kind"] == "RayCluster":
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        pods = [group["template"]["spec"] for group in groups]
    else:
        pods = [spec["template"]["spec"]]
    for pod in pods:
        for container in pod["containers"]:
            yield pod, container


def env_of(container: Document) -> dict[str, Document]:
    return {item["name"]: item for item in container.get("env", [])}


# ---- schemas ---------------------------------------------------------------------------------


def test_kustomization_applies_every_manifest() -> None:
    listed = set(_kustomization()["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    kinds = {d["kind"] for d in documents()}
    assert {"RayCluster", "Deployment", "Service", "PersistentVolumeClaim"} <= kinds


def test_no_secret_values_are_committed() -> None:
    assert not [d for d in documents() if d["kind"] == "Secret"]
    assert not (MANIFESTS / "secrets.env").exists()


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_is_schema_valid(document: Document) -> None:
    validate(document)


def test_vendored_crd_is_the_shared_one() -> None:
    if not SHARED_CRD.is_file():
        pytest.skip(f"{SHARED_CRD} is not on this machine")
    assert CRD.read_bytes() == SHARED_CRD.read_bytes()


def _set(path: str, value: Any) -> Callable[[Document], None]:
    """A mutation: set the dotted `path` (list indexes as numbers) to `value`."""

    def mutate(document: Document) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Document], None]:
    def mutate(document: Document) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = document
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


BROKEN = {
    "raycluster-unknown-field": ("RayCluster", _set("spec.workerGroupSpecs.0.maxReplica", 3)),
    "raycluster-wrong-type": ("RayCluster", _set("spec.workerGroupSpecs.1.minReplicas", "none")),
    "raycluster-missing-required": ("RayCluster", _delete("spec.headGroupSpec.template")),
    "raycluster-pod-unknown-field": (
        "RayCluster",
        _set("spec.headGroupSpec.template.spec.containers.0.volumeMount", []),
    ),
    "raycluster-bad-enum": ("RayCluster", _set("spec.authOptions.mode", "tokens")),
    "raycluster-wrong-kind": ("RayCluster", _set("apiVersion", "ray.io/v1alpha2")),
    "deployment-unknown-field": ("Deployment", _set("spec.template.spec.containerz", [])),
    "deployment-wrong-type": ("Deployment", _set("spec.replicas", "one")),
    "deployment-missing-required": ("Deployment", _delete("spec.selector")),
    "service-wrong-type": ("Service", _set("spec.ports.0.port", "http")),
    "pvc-unknown-field": ("PersistentVolumeClaim", _set("spec.accesMode", "ReadWriteMany")),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_a_broken_manifest_is_rejected(case: str) -> None:
    kind, mutate = BROKEN[case]
    document = copy.deepcopy(one(kind, "rldojo-api" if kind in ("Deployment", "Service") else None))
    validate(document)  # the original passes ...
    mutate(document)
    with pytest.raises(jsonschema.ValidationError):
        validate(document)  # ... and the broken copy does not


# ---- wiring ----------------------------------------------------------------------------------


def test_ray_cluster_has_autoscaling_cpu_and_gpu_groups() -> None:
    spec = one("RayCluster")["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"], "a fixed-size group cannot autoscale"

    def limits(group: Document) -> Document:
        [container] = group["template"]["spec"]["containers"]
        limits: Document = container["resources"]["limits"]
        return limits

    assert "nvidia.com/gpu" not in limits(groups["cpu"])
    assert int(limits(groups["gpu"])["nvidia.com/gpu"]) >= 1
    gpu_image = groups["gpu"]["template"]["spec"]["containers"][0]["image"]
    assert gpu_image.endswith(":cuda"), "GPU workers need the TORCH=cuda image"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_everything_uses_one_secret_that_the_readme_creates() -> None:
    spec = one("RayCluster")["spec"]
    assert spec["authOptions"] == {"mode": "token", "secretName": SECRET}
    referenced = {"auth_token"}  # KubeRay reads this key of authOptions.secretName
    for document in documents():
        if document["kind"] not in ("Deployment", "StatefulSet", "RayCluster"):
            continue
        for _, container in containers(document):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET, item
                    referenced.add(ref["key"])
    readme = (MANIFESTS / "README.md").read_text()
    [command] = re.findall(r"kubectl [^\n]*create secret generic .*?(?<!\\)\n", readme, re.S)
    assert SECRET in command
    assert set(re.findall(r"--from-literal=(\w+)=", command)) == referenced


def test_api_reaches_the_head_database_and_storage() -> None:
    cluster = one("RayCluster")
    deployment = one("Deployment", "rldojo-api")
    [(pod, api)] = list(containers(deployment))
    env = env_of(api)
    ray = urlsplit(env["RLDOJO_RAY_ADDRESS"]["value"])
    head_ports = {
        p["name"]: p["containerPort"]
        for p in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    }
    # KubeRay's head service is <cluster>-head-svc and exposes the head container's ports.
    assert (ray.hostname, ray.port) == (
        f"{cluster['metadata']['name']}-head-svc",
        head_ports["dashboard"],
    )
    database = urlsplit(env["RLDOJO_DATABASE_URL"]["value"])
    postgres = one("Service", "rldojo-postgres")
    assert database.scheme == "postgresql+psycopg"
    assert (database.hostname, database.port) == (
        "rldojo-postgres",
        postgres["spec"]["ports"][0]["port"],
    )
    # $(POSTGRES_PASSWORD) is expanded by Kubernetes from an env var defined before it.
    names = [item["name"] for item in api["env"]]
    assert database.password == "$(POSTGRES_PASSWORD)"
    assert names.index("POSTGRES_PASSWORD") < names.index("RLDOJO_DATABASE_URL")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "--host" in api["command"] and "0.0.0.0" in api["command"]


def test_head_workers_and_api_mount_the_shared_volume() -> None:
    [claim] = [d for d in documents() if d["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    deployment = one("Deployment", "rldojo-api")
    root = env_of(deployment["spec"]["template"]["spec"]["containers"][0])["RLDOJO_STORAGE_ROOT"]
    pods = list(containers(one("RayCluster"))) + list(containers(deployment))
    assert len(pods) == 4  # head, cpu workers, gpu workers, api
    for pod, container in pods:
        volumes = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes.get(mounts.get(root["value"], "")) == claim["metadata"]["name"], container
        assert container["image"].split(":")[0] == "rldojo", "one image for every pod"
        assert pod["securityContext"]["runAsUser"] != 0


def test_api_service_selects_the_api_pods() -> None:
    deployment = one("Deployment", "rldojo-api")
    service = one("Service", "rldojo-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [api] = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in api["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
