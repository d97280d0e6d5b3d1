"""Renderer parameters as the style encoder's regression targets, and back.

Every continuous parameter maps to [0, 1] over a fixed range that covers both ``sampling.sample_params`` and
the era presets; the sensitivity class is a separate 4-way label. Decoding clamps to the ranges and keeps a
print physically coherent (a colour process has no toning or hand tint, a black-and-white one no dye fading).
"""

from __future__ import annotations

import torch

from model.retro.params import SENSITIVITIES, RetroParams

# (name, index within a triple or None, low, high)
RANGES: tuple[tuple[str, int | None, float, float], ...] = (
    ("negative_gamma", None, 0.5, 1.2),
    ("negative_fog", None, 0.1, 0.3),
    ("paper_range", None, 0.9, 1.8),
    ("paper_dmax", None, 1.3, 2.1),
    ("print_exposure", None, -0.25, 0.25),
    ("toe", None, 0.7, 1.2),
    ("shoulder", None, 0.7, 1.2),
    *(("tone", i, 0.7, 1.3) for i in range(3)),
    *(("paper_tint", i, 0.5, 1.0) for i in range(3)),
    ("highlight_loss", None, 0.0, 0.4),
    ("hand_tint", None, 0.0, 0.7),
    *(("dye_fade", i, 0.0, 0.5) for i in range(3)),
    *(("colour_balance", i, -0.12, 0.12) for i in range(3)),
    ("saturation", None, 0.6, 1.1),
    ("format_mm", None, 36.0, 127.0),
    ("print_mm", None, 36.0, 254.0),
    ("grain", None, 0.0, 20.0),
    ("blur_mm", None, 0.0, 0.05),
    ("halation", None, 0.0, 0.15),
    ("vignette", None, 0.0, 30.0),
    ("paper_texture", None, 0.0, 0.02),
    ("wear", None, 0.0, 0.4),
)
NAMES = tuple(name if i is None else f"{name}[{i}]" for name, i, _, _ in RANGES)
SIZE = len(RANGES)
_TRIPLES = ("tone", "paper_tint", "dye_fade", "colour_balance")


def to_vector(params: RetroParams) -> torch.Tensor:
    """(SIZE,) float32 in [0, 1] (values outside a range are clamped to it)."""
    values = []
    for name, i, low, high in RANGES:
        value = getattr(params, name)
        value = value[i] if i is not None else value
        values.append(min(max((value - low) / (high - low), 0.0), 1.0))
    return torch.tensor(values, dtype=torch.float32)


def sensitivity_index(params: RetroParams) -> int:
    return SENSITIVITIES.index(params.sensitivity)


def from_vector(vector: torch.Tensor, sensitivity: int | str) -> RetroParams:
    """The parameters a (SIZE,) vector in [0, 1] stands for, made coherent for its sensitivity class."""
    values = vector.detach().float().clamp(0, 1).cpu().tolist()
    kind = SENSITIVITIES[sensitivity] if isinstance(sensitivity, int) else sensitivity
    fields: dict[str, object] = {"sensitivity": kind}
    triples: dict[str, list[float]] = {name: [0.0, 0.0, 0.0] for name in _TRIPLES}
    for (name, i, low, high), v in zip(RANGES, values, strict=True):
        value = round(low + v * (high - low), 4)
        if i is None:
            fields[name] = value
        else:
            triples[name][i] = value
    fields.update({name: tuple(v) for name, v in triples.items()})
    if kind == "colour":
        fields.update(tone=(1.0, 1.0, 1.0), highlight_loss=0.0, hand_tint=0.0, halation_tint=(1.0, 0.3, 0.05))
    else:
        fields.update(dye_fade=(0.0, 0.0, 0.0), colour_balance=(0.0, 0.0, 0.0), saturation=1.0)
    fields["print_mm"] = max(float(fields["print_mm"]), float(fields["format_mm"]))  # type: ignore[arg-type]
    return RetroParams(**fields)  # type: ignore[arg-type]
