"""The `patina` command. Each subcommand parses options, calls one library function and prints a result.

Errors a user can cause end as one line on stderr and exit code 2, never a stack trace. Commands live in
modules by concern (archive jobs, models, folder tools, retro); importing them registers them on ``app``.
"""

from pipeline.cli import archive, folders, models, retro  # noqa: F401  (registers the commands)
from pipeline.cli.base import app

__all__ = ["app"]
