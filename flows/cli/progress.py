"""Progress of a restoration run in the terminal (rich: rows done/failed, images/s, ETA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.batch.summary import RunProgress


@contextmanager
def progress_reporter(console: Console) -> Iterator[Callable[[RunProgress], None]]:
    """Yield a callback for ``restore_archive(on_progress=...)`` that draws one live progress bar."""
    with Progress(
        TextColumn("[bold]restoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TextColumn("{task.fields[rate]:.2f} img/s"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("restore", total=None, failed=0, rate=0.0)
        shown: list[bool] = []

        def report(p: RunProgress) -> None:
            if p.dashboard_url and not shown:
                # Ray's token authentication is on by default: the page asks for ~/.ray/auth_token.
                console.print(f"Ray dashboard: {p.dashboard_url} (token in ~/.ray/auth_token)")
                shown.append(True)
            bar.update(task, total=p.to_do, completed=p.processed, failed=p.failed, rate=p.images_per_second)

        yield report
