"""Which real old photos a run may learn from. Real prints come with no clean original, so they enter
training as a domain (synthetic defects painted on them, judged on the painted pixels only: see
data.PairPool) and validation as pictures and painted-defect scores; a fixed fifth, picked by a hash of the
file name (adding photos never moves one), is validation and is never trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from model.formats import IMAGE_EXTENSIONS

VAL_SHARE = 5  # one photo in five is validation


def is_real_validation(name: str) -> bool:
    """True for the validation fifth: the first byte of the sha256 of the file name divides by VAL_SHARE."""
    return hashlib.sha256(PurePosixPath(name).name.encode()).digest()[0] % VAL_SHARE == 0


def real_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training, validation) photos of ``folder``, sorted by name."""
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [p for p in photos if not is_real_validation(p.name)], [
        p for p in photos if is_real_validation(p.name)
    ]
