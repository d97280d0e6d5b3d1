"""`patina serve`: serve the Prefect flows on their schedules."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli.base import app, console, user_errors


@app.command()
@user_errors
def serve(
    config: Path = typer.Option(Path("deploy/schedules.toml"), help="Schedules file (TOML)."),
    register_only: bool = typer.Option(False, help="Create/update the deployments, then exit."),
) -> None:
    """Serve patina's Prefect flows on their cron schedules from this machine (PREFECT_API_URL names the
    server). Runs scheduled and UI-triggered runs until interrupted."""
    from flows.serve import load_schedules, register
    from flows.serve import serve as serve_flows

    schedules = load_schedules(config)
    for s in schedules:
        console.print(f"{s.flow}/{s.name}: cron '{s.cron}' ({s.timezone}){' paused' if s.paused else ''}")
    if register_only:
        register(schedules)
        console.print(f"registered {len(schedules)} deployments")
        return
    serve_flows(schedules)
