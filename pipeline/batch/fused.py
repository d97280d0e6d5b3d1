"""Every stage of a row in one actor, for clusters without GPUs (chosen by ``driver.build_dataset``).

On a GPU cluster the stages run apart so CPUs fetch, decode and encode beside the GPU actors. Without GPUs
there is nothing to overlap with: the model and the codecs compete for the same cores, and what separate
stages add is only cost, per block a task or actor call and the pixels serialised into Ray's object store
and out again, twice. Measured with ``benchmarks/restore.py`` on the 2-core box (docs/PERFORMANCE.md), that
cost made the pipeline 0.29x a plain loop on 0.01 MP images. So here one single-threaded actor per CPU runs
fetch -> decode -> model -> encode and write on its batch, and only the result rows leave it: as many
independent copies of the plain loop as there are cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.batch.restorer import ImageActor
from pipeline.batch.stages import decode, encode_and_write, fetch


class FusedActor:
    """``model_actor(**model_kwargs)`` (a ``Restorer`` or ``Stylizer``) with fetch before it and encode and
    write after it. Batch in: manifest rows (``id``, ``uri``); batch out: RESULT_SCHEMA columns, exactly as
    the separate stages return them."""

    def __init__(
        self,
        model_actor: type[ImageActor],
        model_kwargs: dict[str, Any],
        max_pixels: int,
        write: dict[str, Any],
    ):
        """``write``: ``encode_and_write``'s keyword arguments; fetch reads with its ``storage``."""
        self.model = model_actor(**model_kwargs)
        self.max_pixels, self.write = max_pixels, write

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = decode(fetch(batch, self.write["storage"], self.max_pixels), self.max_pixels)
        return encode_and_write(self.model(decoded), **self.write)
