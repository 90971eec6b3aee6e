"""docker-compose.yml, as Docker Compose itself reads it: `docker-compose config` needs no engine.

Every test runs the real `docker-compose config` (Debian's docker-compose, installed by
`make system-deps`) on the repository's compose file with a test env file, and checks the merged
result. Scaling (`up --scale ray-worker=N`) needs an engine; here the worker is checked for what
would stop it from scaling (a container_name, a published host port).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from service.settings import Settings
from tests.service.conftest import wait_for_condition

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GPU_OVERRIDE = ROOT / "deploy" / "compose" / "gpu.yml"
SECRETS = {
    "RAY_AUTH_TOKEN": "ray-token-for-tests-5f1c0e",
    "RLDOJO_API_TOKENS": '{"api-token-for-tests-9d2e": "alice"}',
    "POSTGRES_PASSWORD": "pgpasswordfortests7a3b",
}
SIZES = {"RAY_WORKER_CPUS": "3", "RAY_WORKER_GPUS": "1", "RAY_WORKERS": "2"}
RAY_SERVICES = ("ray-head", "ray-worker", "api")


def _env_file(path: Path, values: dict[str, str]) -> Path:
    # Quoted like .env.example does it: the JSON token map has its own double quotes.
    path.write_text("".join(f"{key}='{value}'\n" for key, value in values.items()))
    return path


def compose_config(env_file: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` over `files` with only `env_file` for interpolation."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make system-deps`")
    command = [binary, "--project-directory", str(ROOT), "--env-file", str(env_file)]
    for file in files or (COMPOSE,):
        command += ["-f", str(file)]
    # A clean environment: variables from the caller's shell would override the env file.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([*command, "config"], capture_output=True, text=True, env=env, timeout=60)


def _loaded(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = _env_file(tmp_path_factory.mktemp("compose") / "test.env", SECRETS | SIZES)
    return _loaded(compose_config(env_file))


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else command.split()


def _flag(service: dict[str, Any], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in _command(service) if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"expected one {name}=... in {_command(service)}"
    return values[0]


def test_services_have_health_checks_and_limits(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"ray-head", "ray-worker", "api", "postgres"}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert float(limits.get("cpus", 0)) > 0 and limits.get("memory"), f"{name}: no limits"


def test_services_start_after_their_dependencies_are_healthy(config: dict[str, Any]) -> None:
    services = config["services"]
    expected = {"ray-worker": {"ray-head"}, "api": {"ray-head", "postgres"}}
    for name, needs in expected.items():
        depends = services[name]["depends_on"]
        assert set(depends) == needs
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name
    assert "depends_on" not in services["ray-head"]


def test_the_worker_scales_and_takes_its_size_from_the_environment(
    config: dict[str, Any],
) -> None:
    head, worker = config["services"]["ray-head"], config["services"]["ray-worker"]
    assert "container_name" not in worker and "hostname" not in worker
    assert not worker.get("ports"), "a published port would collide between replicas"
    assert _flag(worker, "--address") == f"ray-head:{_flag(head, '--port')}"
    assert _flag(worker, "--num-cpus") == SIZES["RAY_WORKER_CPUS"]
    assert _flag(worker, "--num-gpus") == SIZES["RAY_WORKER_GPUS"]
    assert "--block" in _command(worker)
    assert float(worker["deploy"]["resources"]["limits"]["cpus"]) == 3.0
    assert worker["deploy"]["replicas"] == int(SIZES["RAY_WORKERS"])


def test_only_loopback_ports_are_published(config: dict[str, Any]) -> None:
    head = config["services"]["ray-head"]
    published = {
        name: [str(port) for port in service.get("ports", [])]
        for name, service in config["services"].items()
    }
    for name, ports in published.items():
        assert all(port.startswith("127.0.0.1:") for port in ports), (name, ports)
    dashboard = _flag(head, "--dashboard-port")
    assert published["ray-head"] == [f"127.0.0.1:8265:{dashboard}/tcp"]
    assert _flag(head, "--dashboard-host") == "0.0.0.0"  # reachable by the API's container
    assert published["api"] == ["127.0.0.1:8000:8000/tcp"]
    assert not published["ray-worker"] and not published["postgres"]


def test_head_workers_and_api_share_the_storage_volume(config: dict[str, Any]) -> None:
    services = config["services"]

    def mounts(name: str) -> dict[str, str]:
        volumes = [str(v).split(":") for v in services[name].get("volumes", [])]
        return {parts[0]: parts[1] for parts in volumes}

    targets = {mounts(name).get("storage") for name in RAY_SERVICES}
    assert len(targets) == 1 and None not in targets, f"storage mounts differ: {targets}"
    storage = targets.pop()
    assert services["api"]["environment"]["RLDOJO_STORAGE_ROOT"] == storage
    assert mounts("postgres") == {"postgres": "/var/lib/postgresql/data"}
    assert {"storage", "postgres"} <= set(config["volumes"])
    images = {services[name]["image"] for name in RAY_SERVICES}
    contexts = {services[name]["build"]["context"] for name in RAY_SERVICES}
    assert len(images) == 1 and contexts == {str(ROOT)}, "one image, built from this Dockerfile"


def test_secrets_come_only_from_the_env_file(config: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for value in SECRETS.values():
        assert value not in text
    services = config["services"]
    for name in ("ray-head", "ray-worker"):
        environment = services[name]["environment"]
        assert environment == {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": SECRETS["RAY_AUTH_TOKEN"],
        }
    api = services["api"]["environment"]
    assert api["RLDOJO_RAY_AUTH_TOKEN"] == SECRETS["RAY_AUTH_TOKEN"]
    assert api["RLDOJO_API_TOKENS"] == SECRETS["RLDOJO_API_TOKENS"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_the_api_environment_makes_valid_service_settings(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = config["services"]
    api = services["api"]
    for key, value in api["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = Settings(data_dir=tmp_path, host=_command(api)[_command(api).index("--host") + 1])
    settings.check_bind()  # binds 0.0.0.0, so it must have tokens
    assert settings.api_tokens == {"api-token-for-tests-9d2e": "alice"}
    ray = urlsplit(settings.ray_address or "")
    assert (ray.hostname, str(ray.port)) == (
        "ray-head",
        _flag(services["ray-head"], "--dashboard-port"),
    )
    database = urlsplit(settings.database_url or "")
    assert database.scheme == "postgresql+psycopg" and database.hostname == "postgres"
    assert database.password == SECRETS["POSTGRES_PASSWORD"]
    postgres = services["postgres"]["environment"]
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path == f"/{postgres['POSTGRES_DB']}"


def test_a_missing_secret_is_refused_by_name(tmp_path: Path) -> None:
    partial = {k: v for k, v in SECRETS.items() if k != "POSTGRES_PASSWORD"}
    done = compose_config(_env_file(tmp_path / "partial.env", partial))
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr


def test_the_database_image_is_configurable(config: dict[str, Any], tmp_path: Path) -> None:
    assert config["services"]["postgres"]["image"] == "postgres:17-bookworm"  # the default
    local = "rldojo-local/postgres:15-bookworm"  # `make base-images`, from Debian's packages
    env_file = _env_file(tmp_path / "local.env", SECRETS | {"POSTGRES_IMAGE": local})
    assert _loaded(compose_config(env_file))["services"]["postgres"]["image"] == local


def test_env_example_provides_every_required_variable() -> None:
    config = _loaded(compose_config(ROOT / ".env.example"))
    assert config["services"]["api"]["environment"]["RLDOJO_API_TOKENS"].startswith("{")


def test_gpu_override_builds_cuda_workers_with_devices(tmp_path: Path) -> None:
    env_file = _env_file(tmp_path / "gpu.env", SECRETS | {"RAY_WORKER_GPUS": "2"})
    services = _loaded(compose_config(env_file, COMPOSE, GPU_OVERRIDE))["services"]
    worker = services["ray-worker"]
    assert worker["build"]["args"]["TORCH"] == "cuda"
    assert worker["image"] != services["ray-head"]["image"]
    assert services["ray-head"]["build"]["args"]["TORCH"] == "cpu"
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert int(device["count"]) == 2 == int(_flag(worker, "--num-gpus"))


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # Ray's CLI imports Serve's pydantic models
def test_ray_commands_use_only_options_ray_start_knows(config: dict[str, Any]) -> None:
    from ray.scripts.scripts import start  # Ray's own `ray start` (a click command)

    known = {name for param in start.params for name in param.opts}
    for name in ("ray-head", "ray-worker"):
        command = _command(config["services"][name])
        assert command[:2] == ["ray", "start"]
        options = {arg.split("=", 1)[0] for arg in command[2:]}
        assert options <= known, f"{name}: unknown options {options - known}"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_head_command_starts_a_token_ray_head_that_passes_its_health_check(
    config: dict[str, Any],
) -> None:
    """The compose head's own `ray start` flags and environment on this machine; only its ports
    move to free ones (other Ray clusters share the machine) and its dashboard to loopback."""
    head = config["services"]["ray-head"]
    gcs, dashboard, agent, *others = _free_ports(8)
    moved = ("--port=", "--dashboard-port=", "--dashboard-host=")
    command = [Path(sys.executable).with_name("ray").as_posix(), "start"]
    command += [arg for arg in _command(head)[2:] if not arg.startswith(moved)]
    temp_dir = tempfile.mkdtemp(prefix="rldojo-hc-", dir="/tmp")  # Ray's sockets need a short path
    command += [
        f"--port={gcs}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={others[0]}",
        f"--metrics-export-port={others[1]}",
        f"--runtime-env-agent-port={others[2]}",
        f"--ray-client-server-port={others[3]}",
        f"--node-manager-port={others[4]}",
        f"--temp-dir={temp_dir}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update({k: str(v) for k, v in head["environment"].items()})
    check = head["healthcheck"]["test"][1]
    check = check.replace(":52365/", f":{agent}/").replace(":8265/", f":{dashboard}/")
    assert str(agent) in check and str(dashboard) in check, check
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            assert process.poll() is None, f"ray start exited with {process.returncode}"
            return subprocess.run(["/bin/sh", "-c", check], timeout=30).returncode == 0

        wait_for_condition(healthy, timeout=120, interval=1.0)
        # Token auth is on: the same dashboard refuses an API call without the token.
        url = f"http://127.0.0.1:{dashboard}/api/jobs/"
        assert httpx.get(url, timeout=10).status_code == 401
        token = {"Authorization": f"Bearer {head['environment']['RAY_AUTH_TOKEN']}"}
        wait_for_condition(lambda: httpx.get(url, headers=token, timeout=10).status_code == 200)
    finally:
        process.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
