"""What can be checked here of deploy/: every file parses; every entrypoint, module, flow and command it names
exists and accepts the parameters given; versions pinned there match the lock. (No Docker daemon, Kubernetes
or AWS here: building the image and starting clusters are not tested.)"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
import typer.main
import yaml
from prefect import Flow

from flows.cli import app  # the installed `patina`
from flows.serve import FLOWS, _check_parameters, load_schedules

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
LOCK = dict(
    line.split("==", 1)
    for line in (REPO / "requirements.lock").read_text().splitlines()
    if "==" in line and not line.startswith("#")
)
YAML_FILES = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _patina(argv: list[str]) -> None:
    """Parse a `patina ...` command line with the real CLI (unknown commands or options raise)."""
    assert argv[0] == "patina", argv
    group = typer.main.get_command(app)
    command = group.get_command(click.Context(group), argv[1])
    if command is None:
        raise ValueError(f"no such command {argv[1]!r}")
    command.make_context(argv[1], argv[2:])


def test_every_yaml_parses():
    assert len(YAML_FILES) >= 5
    for path in YAML_FILES:
        assert yaml.safe_load(path.read_text()), path


def test_the_command_checker_rejects_what_the_cli_would():
    _patina(["patina", "restore", "--manifest", "m.parquet", "--output", "out", "--ray-address", "auto"])
    with pytest.raises(Exception, match="No such option: --colour"):  # typer ships its own click
        _patina(["patina", "restore", "--manifest", "m.parquet", "--output", "out", "--colour", "sepia"])
    with pytest.raises(Exception, match="no such command"):
        _patina(["patina", "resotre"])


def test_dockerfile_installs_the_locked_versions():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    torch = re.search(r"ARG TORCH_VERSION=(\S+)", dockerfile).group(1)
    assert torch == LOCK["torch"] == re.search(r"install --quiet torch==(\S+)", makefile).group(1)
    assert "pip install -r requirements.lock" in dockerfile and "COPY requirements.lock" in dockerfile
    assert "python3.11" in dockerfile  # the lock was resolved on 3.11
    for package in ("model", "pipeline", "flows", "deploy"):
        assert f"COPY {package} {package}" in dockerfile


def test_prefect_yaml_deployments_name_real_flows_with_accepted_parameters():
    config = _yaml("prefect.yaml")
    assert config["prefect-version"] == LOCK["prefect"]
    names = [d["name"] for d in config["deployments"]]
    assert len(names) == len(set(names)) >= 3
    for deployment in config["deployments"]:
        path, _, attr = deployment["entrypoint"].partition(":")
        assert (REPO / path).is_file(), path
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)
        assert isinstance(flow, Flow) and flow in FLOWS.values()
        _check_parameters(flow, deployment["parameters"], deployment["name"])
        assert deployment["work_pool"]["name"]
        for schedule in deployment.get("schedules", []):
            from prefect.client.schemas.schedules import CronSchedule

            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
    directory = config["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert f"WORKDIR {directory}" in (DEPLOY / "Dockerfile").read_text()


@pytest.mark.parametrize("name", ["schedules.toml", "schedules.compose.toml"])
def test_schedule_files_load(name):
    assert load_schedules(DEPLOY / name)


def test_kuberay_manifests():
    cluster = _yaml("kuberay/raycluster.yaml")
    job = _yaml("kuberay/rayjob.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    for spec in (cluster["spec"], job["spec"]["rayClusterSpec"]):
        assert spec["rayVersion"] == LOCK["ray"]
        assert spec["enableInTreeAutoscaling"] is True
        (gpu,) = spec["workerGroupSpecs"]
        assert 0 <= gpu["minReplicas"] <= gpu["replicas"] <= gpu["maxReplicas"]
        (container,) = gpu["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        images = {c["image"] for c in spec["headGroupSpec"]["template"]["spec"]["containers"]} | {
            container["image"]
        }
        assert len(images) == 1  # head and workers run the same patina image
    _patina(shlex.split(job["spec"]["entrypoint"]))
    secret = _yaml("kuberay/s3-credentials.example.yaml")
    assert (
        secret["metadata"]["name"]
        == cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["envFrom"][0][
            "secretRef"
        ]["name"]
    )


def test_cluster_launcher_config_passes_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _yaml("ray-cluster-aws.yaml")
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "aws"
    gpu = config["available_node_types"]["gpu_worker"]
    assert gpu["min_workers"] == 0 < gpu["max_workers"] <= config["max_workers"]


def test_compose_stack_pins_the_locked_prefect_and_runs_real_commands():
    compose = _yaml("docker-compose.yml")
    services = compose["services"]
    assert {"prefect-server", "minio", "ray-head", "patina-serve"} <= set(services)
    assert services["prefect-server"]["image"].split(":")[1].startswith(LOCK["prefect"] + "-python3.11")
    for name in ("ray-head", "patina-serve"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    serve = services["patina-serve"]["command"]
    patina_command = shlex.split(serve.split("&&")[-1].strip().rstrip('"'))
    _patina(patina_command)
    config = patina_command[patina_command.index("--config") + 1]
    assert load_schedules(REPO / config)


def test_lock_is_what_pyproject_allows_and_what_is_installed():
    # Names, versions within pyproject's ranges, and the versions this environment really runs: a lock that
    # drifted from either would install something nobody tested.
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = {canonicalize_name(name): Version(v) for name, v in LOCK.items()}
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (name, str(locked[name]))
    for name, pinned in locked.items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            continue  # an optional extra of some package that this platform does not install
        assert installed.public.split("+")[0] == str(pinned), (name, str(installed), str(pinned))
