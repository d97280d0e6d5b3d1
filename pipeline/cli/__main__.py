"""python -m pipeline.cli, for environments without the console script."""

from pipeline.cli import app

app()
