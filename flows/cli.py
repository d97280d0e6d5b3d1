"""The `patina` command as installed: pipeline's commands (pipeline/cli/) plus `patina serve`, which serves
the Prefect flows on their schedules. It sits here, on top: it imports pipeline/ and flows/, and neither
imports it, so no module reaches up a layer. ``python -m flows.cli`` runs it without the console script.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli.base import console, user_errors


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


__all__ = ["app"]

if __name__ == "__main__":
    app()
