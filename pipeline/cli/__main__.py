"""python -m pipeline.cli: the pipeline's commands without the console script. `patina serve` is
flows/cli.py's: python -m flows.cli serve."""

from pipeline.cli import app

app()
