"""The training mixtures (docs/DEGRADATIONS.md): ``local`` (the default model's: local damage, tone kept, see
``_local_plan``) and ``blind``, the earlier default described here.

A restorer must first learn to leave good pixels alone, then to undo what it cannot see the cause of. So a
training pair is drawn from a mixture (probabilities per pair):

- 10% identity: the clean crop itself. Teaches "an undamaged photo is left alone".
- 40% blind chain: the Bringing-Old-Photos-Back-to-Life ops (Wan et al. 2020), each with p = 0.7 in random
  order: Gaussian blur (kernel 3/5/7, sigma 1-5), noise (Gaussian or speckle 5-50/255, or salt-and-pepper),
  resize x0.5-1 and back (nearest or bilinear), JPEG 40-100; 10% grayscale. With p = 0.3 a second order
  follows, with Real-ESRGAN's second-stage ranges (blur sigma 0.2-1.5, resize x0.5-1, noise 1-25/255, JPEG
  30-95). Half of these pairs also carry the engine's structured defects (scratches, dust, creases, stains,
  tears) at light or medium counts. No colour cast or fading.
- 50% engine: a full engine plan (``light`` 45%, ``medium`` 35%, ``heavy`` 20%). In 40% of them the
  colour-cast and fading ops are dropped (grayscale stays), so that tone is moved only when it is wrong.

Pairs without a cast or fading: 10% + 40% + 50% x 40% = 70% at least. Light damage is the most common kind.
Defect geometry is drawn for a photo of relative size ``scale`` (log-uniform 0.35-1.5 of a 512 px photo), so
a fixed-size training crop sees scratches and specks at the widths of small and large scans alike.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from model.degradation.engine import (
    PRESETS,
    DegradationPlan,
    Op,
    _capture,
    _damage,
    _r,
    _scan,
    _seed,
    sample_plan,
)

MIXTURES = ("local", "blind", "light", "medium", "heavy")
_CAST_OPS = ("dye_fade", "sepia", "yellowing", "fade", "vignette", "uneven_exposure")


def sample_training_plan(
    rng: np.random.Generator, height: int, width: int, mixture: str = "blind"
) -> DegradationPlan:
    """One training plan for a (height, width) crop: the blind mixture, or a single engine preset."""
    if mixture not in MIXTURES:
        raise ValueError(f"unknown degradation mixture {mixture!r}; choose one of {list(MIXTURES)}")
    scale = float(math.exp(rng.uniform(math.log(0.35), math.log(1.5))))
    if mixture == "local":
        return _local_plan(rng, height, width, scale)
    if mixture != "blind":
        return sample_plan(rng, height, width, mixture, scale=scale)
    u = rng.random()
    if u < 0.1:
        return DegradationPlan(height, width, "identity", ())
    if u < 0.5:
        return DegradationPlan(height, width, "blind", tuple(_blind_chain(rng, height, width, scale)))
    severity = str(rng.choice(["light", "medium", "heavy"], p=[0.45, 0.35, 0.2]))
    plan = sample_plan(rng, height, width, severity, scale=scale)
    if rng.random() < 0.4:
        plan = DegradationPlan(
            height, width, severity, tuple(op for op in plan.ops if op[0] not in _CAST_OPS)
        )
    return plan


def _blind_chain(rng: np.random.Generator, h: int, w: int, scale: float) -> list:
    first = _first_order(rng)
    gray = rng.random() < 0.1
    damage = (
        _damage(rng, PRESETS[str(rng.choice(["light", "medium"]))], h, w, scale) if rng.random() < 0.5 else []
    )
    second = _second_order(rng) if rng.random() < 0.3 else []
    # Damage is on the print, so it comes before the scan's resampling, noise and JPEG.
    ops = ([("grayscale", {})] if gray else []) + damage + first + second
    # JPEG is how the file was saved: keep the last JPEG last whatever the shuffle did.
    jpegs = [op for op in ops if op[0] == "jpeg"]
    return [op for op in ops if op[0] != "jpeg"] + jpegs[-1:]


def _first_order(rng: np.random.Generator) -> list:
    ops = []
    if rng.random() < 0.7:
        ops.append(("gaussian_blur", {"sigma": _r(rng.uniform(1, 5)), "radius": int(rng.choice([1, 2, 3]))}))
    if rng.random() < 0.7:
        ops.append(_noise(rng, 5, 50))
    if rng.random() < 0.7:
        mode = str(rng.choice(["nearest", "bilinear"]))
        ops.append(("resize", {"scale": _r(rng.uniform(0.5, 1.0)), "down": mode, "up": mode}))
    if rng.random() < 0.7:
        ops.append(("jpeg", {"quality": int(rng.integers(40, 101)), "subsampling": 2}))
    rng.shuffle(ops)
    return ops


def _second_order(rng: np.random.Generator) -> list:
    """Real-ESRGAN's second degradation round (Wang et al. 2021, Table 1 second-order ranges)."""
    ops = []
    if rng.random() < 0.8:
        ops.append(("gaussian_blur", {"sigma": _r(rng.uniform(0.2, 1.5))}))
    if rng.random() < 0.7:
        mode = str(rng.choice(["area", "bilinear", "bicubic"]))
        ops.append(("resize", {"scale": _r(rng.uniform(0.5, 1.0)), "down": mode, "up": "bilinear"}))
    if rng.random() < 0.7:
        ops.append(_noise(rng, 1, 25))
    rng.shuffle(ops)
    ops.append(("jpeg", {"quality": int(rng.integers(30, 96)), "subsampling": 2}))
    return ops


def _noise(rng: np.random.Generator, lo: float, hi: float) -> tuple[str, dict]:
    sigma = _r(rng.uniform(lo, hi) / 255)
    kind = rng.choice(["gaussian", "speckle", "salt"], p=[0.45, 0.4, 0.15])
    if kind == "gaussian":
        return "gaussian_noise", {"sigma": sigma, "gray": bool(rng.random() < 0.4), "seed": _seed(rng)}
    if kind == "speckle":
        return "speckle_noise", {"sigma": sigma, "seed": _seed(rng)}
    return "salt_and_pepper", {
        "amount": _r(sigma / 10),
        "salt": _r(rng.uniform(0.2, 0.8)),
        "seed": _seed(rng),
    }


# The local-repair mixture's damage: each kind independently, at counts from none to a worn print's.
_LOCAL_DAMAGE = dataclasses.replace(
    PRESETS["medium"],
    stains=Op(0.05, 1, 1),
    creases=Op(0.1, 1, 2),
    scratches=Op(0.5, 1, 14),
    cracks=Op(0.5, 1, 3),
    tears=Op(0.0, 1, 1),
    dust=Op(0.6, 5, 200),
    hairs=(0, 4),
)


def _local_plan(rng: np.random.Generator, h: int, w: int, scale: float) -> DegradationPlan:
    """The ``local`` mixture (the default model's since the detect-and-fill issue): local damage only, never a
    change of global tone, so the target carries the input's tone and an undamaged photo is left where it is.

    - 12% identity.
    - 15% grayscale prints (the target is grayscale too: no invented colours).
    - the camera (blur, film grain: the engine's ``light`` capture) on 40%;
    - structured damage on 85%: scratches, emulsion-crack networks, dust, specks and hairs, foxing (brown
      spots), a rare crease or stain, each with its exact mask;
    - the scan: the published first-order chain (blur sigma 1-5, noise 5-50/255, resize, JPEG 40-100) on
      35%, the engine's light or medium scan ops on 45%; JPEG always last.
    """
    if rng.random() < 0.12:
        return DegradationPlan(h, w, "identity", ())
    ops: list = [("grayscale", {})] if rng.random() < 0.15 else []
    blur = min(max(scale, 0.5), 2.0)
    if rng.random() < 0.4:
        ops += _capture(rng, PRESETS["light"], blur)
    if rng.random() < 0.85:
        damage = []
        while not damage:  # a damaged pair has at least one defect
            damage = _damage(rng, _LOCAL_DAMAGE, h, w, scale)
        ops += damage
        if rng.random() < 0.1:
            ops.append(_foxing(rng, scale))
    u = rng.random()
    if u < 0.35:
        scan = _first_order(rng) + (_second_order(rng) if rng.random() < 0.2 else [])
    elif u < 0.8:
        scan = _scan(rng, PRESETS[str(rng.choice(["light", "medium"]))], blur)
    else:
        scan = []
    jpegs = [op for op in scan if op[0] == "jpeg"]
    ops += [op for op in scan if op[0] != "jpeg"] + jpegs[-1:]
    return DegradationPlan(h, w, "local", tuple(ops))


def _foxing(rng: np.random.Generator, scale: float) -> tuple[str, dict]:
    """Foxing: rust-brown spots of mould and iron in the paper, drawn by the dust op in brown."""
    brown = [_r(rng.uniform(0.45, 0.65)), _r(rng.uniform(0.3, 0.45)), _r(rng.uniform(0.15, 0.3))]
    return "dust", {
        "count": int(rng.integers(3, 40)),
        "radius": [_r(max(0.5, 1.0 * scale)), _r(max(1.0, rng.uniform(2.0, 6.0) * scale))],
        "bright_fraction": 0.0,
        "hairs": [],
        "bright_color": brown,
        "dark_color": brown,
        "seed": _seed(rng),
    }
