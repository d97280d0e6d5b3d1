"""The period-print renderer's parameters: one frozen, JSON-readable record per look.

Every length is physical (millimetres on the negative or on the print), never pixels, so a thumbnail and a
40 MP scan of the same photo get the same look. docs/RETRO.md gives each parameter's meaning and source.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

SENSITIVITIES = ("blue", "ortho", "pan", "colour")
Triple = tuple[float, float, float]


@dataclass(frozen=True)
class RetroParams:
    # The negative: what the emulsion saw and how it was developed.
    sensitivity: str = "pan"  # blue | ortho | pan (black-and-white emulsions) | colour (three dye layers)
    negative_gamma: float = 0.8  # slope of the negative's straight line (density per log10 exposure)
    negative_fog: float = 0.2  # base + fog density of the negative
    # The print: paper characteristic curve (log exposure -> density) and its materials.
    paper_range: float = 1.1  # log10 exposure range of the paper (ISO R): ~1.05 = grade 2, larger = softer
    paper_dmax: float = 1.9  # maximum print density (glossy ~2.0, matte ~1.6, faded or albumen lower)
    print_exposure: float = 0.0  # log10 printing exposure relative to the printer's normal (+ = darker)
    toe: float = 1.0  # sharpness of the curve's highlight end (< 1: softer highlights)
    shoulder: float = 1.0  # sharpness of the curve's shadow end (< 1: softer, blocked-up shadows)
    tone: Triple = (
        1.0,
        1.0,
        1.0,
    )  # spectral density of the image deposit per R, G, B (1,1,1 = neutral silver)
    paper_tint: Triple = (0.92, 0.92, 0.91)  # reflectance of the paper base per R, G, B (yellowing lowers B)
    highlight_loss: float = 0.0  # fraction of image density lost where it is thin (albumen / silver fading)
    hand_tint: float = 0.0  # strength of transparent hand-coloured washes over the print (0 = none)
    # Colour processes only.
    dye_fade: Triple = (0.0, 0.0, 0.0)  # fraction of cyan, magenta, yellow dye density lost to age
    colour_balance: Triple = (
        0.0,
        0.0,
        0.0,
    )  # log10 exposure shift per R, G, B layer (filtration, instant drift)
    saturation: float = 1.0  # colour separation of the layers' exposures (1 = as photographed)
    # Optics, grain and paper surface, in physical sizes.
    format_mm: float = 36.0  # long side of the negative (35 mm film: 36; 4x5 in sheet: 127; CdV plate: 89)
    print_mm: float = 127.0  # long side of the print
    grain: float = (
        0.0  # diffuse RMS granularity (x1000, 48 um aperture, at net density 1), as datasheets give
    )
    blur_mm: float = 0.0  # lens softness: Gaussian sigma on the negative, mm
    halation: float = 0.0  # fraction of bright exposure scattered back through the emulsion
    halation_mm: float = 0.3  # halation radius on the negative, mm
    halation_tint: Triple = (
        1.0,
        1.0,
        1.0,
    )  # which layers halate (colour film: red most, it lies nearest the base)
    vignette: float = 0.0  # half field angle of the lens at the corners, degrees (cos^4 falloff); 0 = none
    paper_texture: float = 0.0  # relative reflectance variation of the paper surface
    wear: float = 0.0  # light handling wear from the degradation engine: 0 = none, 1 = its light preset

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "sensitivity":
                continue
            triple = f.type == "Triple"
            values = value if triple and isinstance(value, tuple) else (value,)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if not numbers or (triple and (not isinstance(value, tuple) or len(value) != 3)):
                raise ValueError(
                    f"{f.name} must be {'three numbers' if triple else 'a number'}, got {value!r}"
                )
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
        if self.sensitivity not in SENSITIVITIES:
            raise ValueError(f"unknown sensitivity {self.sensitivity!r}; choose one of {list(SENSITIVITIES)}")
        for name in ("tone", "paper_tint", "dye_fade", "colour_balance", "halation_tint"):
            value = getattr(self, name)
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} needs three finite numbers, got {value}")
        positive = (
            "negative_gamma",
            "paper_range",
            "paper_dmax",
            "toe",
            "shoulder",
            "format_mm",
            "print_mm",
            "saturation",
            "halation_mm",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if min(self.negative_fog, self.grain, self.blur_mm, self.paper_texture, *self.tone) < 0:
            raise ValueError("negative_fog, grain, blur_mm, paper_texture and tone must not be negative")
        fractions = ("highlight_loss", "hand_tint", "halation", "wear")
        for name in fractions:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not all(0.0 <= v <= 1.0 for v in (*self.dye_fade, *self.paper_tint)):
            raise ValueError("dye_fade and paper_tint values must be in [0, 1]")
        if not 0.0 <= self.vignette < 90.0:
            raise ValueError(f"vignette is a half field angle in degrees [0, 90), got {self.vignette}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetroParams:
        if not isinstance(data, dict):
            raise ValueError(f"retro parameters must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown retro parameters {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> RetroParams:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"retro parameters are not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> RetroParams:
        return dataclasses.replace(self, **changes)
