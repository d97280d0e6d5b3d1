"""python -m flows.cli: the `patina` command without the console script."""

from flows.cli import app

app()
