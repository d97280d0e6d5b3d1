"""Random renderer parameters: the space the reference-guided GAN trains and is evaluated on (docs/RETRO.md).

Ranges span the six era presets and what lies between them (any sensitivity class with any paper, toning,
fading and optics), so a model trained on them has seen every preset and its neighbours.
"""

from __future__ import annotations

import numpy as np

from model.retro.params import RetroParams

# Directions of image tone away from neutral silver (R, G, B spectral density): warm sepia (silver
# sulfide), purple-brown (gold-toned albumen), cold blue-black.
_TONES = {"sepia": (-0.28, -0.05, 0.3), "gold": (-0.12, 0.0, -0.08), "cold": (0.02, 0.0, -0.05)}
_FORMATS_MM = (36.0, 60.0, 84.0, 100.0, 127.0)


def sample_params(rng: np.random.Generator) -> RetroParams:
    """One look, drawn from ``rng``."""
    sensitivity = str(rng.choice(["blue", "ortho", "pan", "colour"], p=[0.2, 0.25, 0.25, 0.3]))
    colour = sensitivity == "colour"
    toning = str(rng.choice(list(_TONES)))
    strength = 0.0 if colour else float(rng.uniform(0, 1))
    tone = tuple(round(1 + strength * d, 3) for d in _TONES[toning])
    yellowing = float(rng.uniform(0, 0.3))
    format_mm = float(rng.choice(_FORMATS_MM))

    def u(lo: float, hi: float) -> float:
        return round(float(rng.uniform(lo, hi)), 3)

    def sometimes(p: float, lo: float, hi: float) -> float:
        return u(lo, hi) if rng.random() < p else 0.0

    return RetroParams(
        sensitivity=sensitivity,
        negative_gamma=u(0.5, 1.2),
        negative_fog=u(0.1, 0.3),
        paper_range=u(0.9, 1.8),
        paper_dmax=u(1.3, 2.1),
        print_exposure=round(float(rng.normal(0, 0.08)), 3),
        toe=u(0.7, 1.2),
        shoulder=u(0.7, 1.2),
        tone=tone,
        paper_tint=(
            round(0.95 - 0.03 * yellowing, 3),
            round(0.93 - 0.1 * yellowing, 3),
            round(0.9 - 0.35 * yellowing, 3),
        ),
        highlight_loss=0.0 if colour else sometimes(0.3, 0.0, 0.4),
        hand_tint=0.0 if colour else sometimes(0.2, 0.2, 0.7),
        dye_fade=tuple(sometimes(0.6, 0.0, 0.5) for _ in range(3)) if colour else (0.0, 0.0, 0.0),
        colour_balance=tuple(round(float(rng.normal(0, 0.04)), 3) for _ in range(3))
        if colour
        else (0.0, 0.0, 0.0),
        saturation=u(0.6, 1.1) if colour else 1.0,
        format_mm=format_mm,
        print_mm=round(min(254.0, format_mm * float(rng.uniform(1, 5))), 1),
        grain=u(0, 20),
        blur_mm=u(0, 0.05),
        halation=sometimes(0.5, 0.0, 0.15),
        halation_tint=(1.0, 0.3, 0.05) if colour else (1.0, 1.0, 1.0),
        vignette=u(0, 30),
        paper_texture=u(0, 0.02),
        wear=sometimes(0.3, 0.0, 0.4),
    )
