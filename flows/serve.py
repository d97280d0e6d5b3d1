"""`patina serve`: run patina's flows on their cron schedules from one machine, no work pool needed.

Schedules come from a TOML file (deploy/schedules.toml is the example):

    [[deployment]]
    name = "nightly-demo"            # shows in the Prefect UI as restore-archive/nightly-demo
    flow = "restore-archive"         # restore-archive | train-gan | build-manifest
    cron = "0 2 * * *"
    timezone = "UTC"                 # optional, default UTC
    paused = false                   # optional
    [deployment.parameters]          # the flow's parameters; required ones must be here
    manifest = "demo-output/archive/manifest.parquet"
    output = "demo-output/restored-by-prefect"

Everything is checked when the file is loaded (flow names, cron, parameters against the flow's signature), so
a typo is one clear error at start-up, not a failed run at 2 a.m. Production deployments to a work pool live
in deploy/prefect.yaml instead.
"""

from __future__ import annotations

import inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect import serve as prefect_serve
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ParameterTypeError, SignatureMismatchError
from prefect.schedules import Cron

from flows.manifest import build_manifest_flow
from flows.restore import restore_archive_flow
from flows.stylize import stylize_archive_flow
from flows.train import train_gan_flow

FLOWS: dict[str, Flow] = {
    "restore-archive": restore_archive_flow,
    "stylize-archive": stylize_archive_flow,
    "train-gan": train_gan_flow,
    "build-manifest": build_manifest_flow,
}


@dataclass(frozen=True)
class Schedule:
    name: str
    flow: str
    cron: str
    timezone: str = "UTC"
    paused: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def load_schedules(path: Path) -> list[Schedule]:
    """Read and check a schedules file; every problem is a one-line ValueError naming the deployment."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such schedules file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    entries = data.get("deployment", [])
    if not entries:
        raise ValueError(f"{path}: no [[deployment]] entries")
    schedules = []
    for entry in entries:
        label = f"{path}: deployment {entry.get('name', '?')!r}"
        try:
            schedule = Schedule(**entry)
        except TypeError as exc:
            raise ValueError(f"{label}: {exc}") from None
        if schedule.flow not in FLOWS:
            raise ValueError(f"{label}: unknown flow {schedule.flow!r}; choose one of {', '.join(FLOWS)}")
        try:
            CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        except ValueError as exc:  # pydantic's message: its third line says what is wrong
            raise ValueError(f"{label}: {str(exc).splitlines()[2].strip()}") from None
        _check_parameters(FLOWS[schedule.flow], schedule.parameters, label)
        schedules.append(schedule)
    names = [s.name for s in schedules]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: deployment names must be unique, got {names}")
    return schedules


def _check_parameters(flow: Flow, parameters: dict[str, Any], label: str) -> None:
    accepted = inspect.signature(flow.fn).parameters
    unknown = sorted(set(parameters) - set(accepted))
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in parameters]
    if unknown or missing:
        problems = [f"unknown parameter(s) {', '.join(unknown)}"] if unknown else []
        problems += [f"missing required parameter(s) {', '.join(missing)}"] if missing else []
        raise ValueError(
            f"{label}: {'; '.join(problems)} for flow {flow.name} (accepts {', '.join(accepted)})"
        )
    try:
        flow.validate_parameters(parameters)
    except (ParameterTypeError, SignatureMismatchError) as exc:
        raise ValueError(f"{label}: {' '.join(str(exc).split())}") from None


def deployments(schedules: list[Schedule]) -> list[RunnerDeployment]:
    return [
        FLOWS[s.flow].to_deployment(
            name=s.name,
            schedules=[Cron(s.cron, timezone=s.timezone)],
            paused=s.paused,
            parameters=s.parameters,
            tags=["patina"],
            concurrency_limit=1,  # a scheduled job never overlaps itself: runs resume, they don't race
        )
        for s in schedules
    ]


def register(schedules: list[Schedule]) -> list[UUID]:
    """Create or update the deployments and their schedules on the Prefect server; returns their ids."""
    return [deployment.apply() for deployment in deployments(schedules)]


def serve(schedules: list[Schedule]) -> None:
    """Register, then run scheduled (and manually triggered) runs in this process until interrupted."""
    prefect_serve(*deployments(schedules))
