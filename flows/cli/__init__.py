"""The `patina` command, on top of the house: it imports pipeline/ and flows/, and nothing imports it (a test
holds that). Each subcommand parses options, calls one library function and prints a result.

Errors a user can cause end as one line on stderr and exit code 2, never a stack trace. Commands live in
modules by concern (archive jobs, models, folder tools, retro, serving the flows); importing them registers
them on ``app``. ``python -m flows.cli`` runs it without the console script.
"""

from flows.cli import archive, folders, models, retro, serving, tone  # noqa: F401  (registers the commands)
from flows.cli.base import app

__all__ = ["app"]
