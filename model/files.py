"""Writing a local file so that no reader, and no crash, ever sees it half-written. Shared by checkpoints
(model/) and the storage layer (pipeline/), which may import model/ but not the other way round."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # what write_atomically writes before its rename


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(file)`` into a hidden temp file in the destination folder (created if missing), fsync, then
    rename it over ``path``: os.replace is atomic within one file system, so a crash leaves the old file or
    the new one, and a failed write leaves neither a temp file nor a partial ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Not mkstemp: its 0600 mode would make outputs unreadable to others; 0666 minus umask is what a plain
    # open() gives.
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def is_temp_name(name: str) -> bool:
    """A name ``write_atomically`` gives its temp files (left behind only by a process killed mid-write)."""
    return _TEMP_NAME.match(name) is not None


# The shipped models (docs/MODEL.md, docs/RETRO.md). Here, in a module without torch, so the command line
# and the job configs can name them without loading a model library.
WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS / "patina-restoration-small.safetensors"
DEFAULT_RETRO_CHECKPOINT = WEIGHTS / "patina-retro-small.safetensors"
DEFAULT_TONE_ESTIMATOR = WEIGHTS / "patina-tone-small.safetensors"
