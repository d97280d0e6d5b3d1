"""The geometry of sampled print damage: random strokes for scratches and hairs, crease lines, torn edges and
stain blobs, as plain JSON-able numbers for a ``DegradationPlan``. ``engine._damage`` decides how many of
each a print gets; model/degradation/defects.py draws them."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np


def _r(x: float) -> float:
    """Plain float rounded to 3 decimals: compact JSON, and the plan is exactly what gets applied."""
    return round(float(x), 3)


def _walk(rng: np.random.Generator, start, heading: float, length: float, knots: int, bend: float) -> list:
    """Control points of a random walk: ``knots`` points spanning ``length``, turning N(0, bend) per step."""
    points, (x, y) = [], start
    for _ in range(knots):
        points.append([_r(x), _r(y)])
        heading += rng.normal(0, bend)
        x, y = x + math.cos(heading) * length / (knots - 1), y + math.sin(heading) * length / (knots - 1)
    return points


def _stroke(rng, points, width: float, opacity: tuple[float, float], gap: float, bright: float) -> dict:
    return {
        "points": points,
        "widths": [_r(width * rng.uniform(0.5, 1.3)) for _ in range(5)],
        "opacities": [0.0 if rng.random() < gap else _r(rng.uniform(*opacity)) for _ in range(6)],
        "bright": bool(rng.random() < bright),
    }


def _scratch(rng, h: int, w: int, s: float) -> dict:
    side = min(h, w)
    if rng.random() < 0.3:  # film-style: a long, nearly vertical line from the transport, with a slow drift
        length = h * rng.uniform(0.3, 1.0)
        x, y = rng.uniform(0, w - 1), rng.uniform(-0.1 * h, h - 0.5 * length)
        pts = [
            [_r(x + rng.normal(0, 0.004 * w) + i * rng.normal(0, 0.002 * w)), _r(y + length * i / 5)]
            for i in range(6)
        ]
        return _stroke(rng, pts, max(0.5, rng.uniform(0.6, 2.0) * s), (0.3, 0.9), 0.1, 0.5)
    length = side * math.exp(rng.uniform(math.log(0.05), math.log(0.7)))
    start = (rng.uniform(0, w - 1), rng.uniform(0, h - 1))
    pts = _walk(
        rng, start, rng.uniform(0, 2 * math.pi), length, int(rng.integers(3, 8)), rng.uniform(0.03, 0.5)
    )
    return _stroke(rng, pts, max(0.6, rng.uniform(1.0, 4.0) * s), (0.3, 1.0), 0.15, 0.6)


def fine_scratch(rng, h: int, w: int, s: float, max_fraction: float = 0.12) -> dict:
    """A short, thin, faint handling scratch: at most ``max_fraction`` of the short side long, never the long
    film-transport line of ``_scratch``. What a print picks up in an album, not damage to restore."""
    length = min(h, w) * rng.uniform(0.03, max_fraction)
    start = (rng.uniform(0, w - 1), rng.uniform(0, h - 1))
    pts = _walk(rng, start, rng.uniform(0, 2 * math.pi), length, 4, rng.uniform(0.02, 0.2))
    return _stroke(rng, pts, max(0.5, rng.uniform(0.5, 1.2) * s), (0.15, 0.5), 0.2, 0.6)


def _hair(rng, h: int, w: int, s: float) -> dict:
    start = (rng.uniform(0, w - 1), rng.uniform(0, h - 1))
    length = min(h, w) * rng.uniform(0.02, 0.1)
    pts = _walk(rng, start, rng.uniform(0, 2 * math.pi), length, 5, rng.uniform(0.3, 0.9))
    return _stroke(rng, pts, max(0.5, rng.uniform(0.6, 1.5) * s), (0.6, 1.0), 0.0, 0.3)


def _paper(rng) -> list[float]:
    v = rng.uniform(0.85, 1.0)
    return [_r(v), _r(v * rng.uniform(0.95, 1.0)), _r(v * rng.uniform(0.85, 0.98))]


def _dark(rng) -> list[float]:
    v = rng.uniform(0.02, 0.15)
    return [_r(v), _r(v * rng.uniform(0.85, 1.0)), _r(v * rng.uniform(0.7, 1.0))]


def _harmonics(rng, count: int, scale: float) -> list[list[float]]:
    return [[_r(rng.uniform(0, scale) / k), _r(rng.uniform(0, 2 * math.pi))] for k in range(2, 2 + count)]


def _crease(rng, h: int, w: int, s: float) -> dict:
    side = min(h, w)
    angle = rng.uniform(0, math.pi)
    if rng.random() < 0.6:  # prints are mostly folded in half or in quarters
        angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.08)
    return {
        "angle": _r(angle),
        "x": _r(rng.uniform(0.2, 0.8) * (w - 1)),
        "y": _r(rng.uniform(0.2, 0.8) * (h - 1)),
        "wobble": [
            [
                _r(rng.uniform(0, 0.008) * side),
                _r(rng.uniform(0.3, 1.5) * side),
                _r(rng.uniform(0, 2 * math.pi)),
            ]
            for _ in range(2)
        ],
        "width": _r(max(1.0, rng.uniform(2.0, 6.0) * s)),
        "shade": _r(rng.uniform(0.08, 0.3)),
        "shift": _r(rng.uniform(0.3, 1.5) * s),
        "crack_width": _r(max(0.7, rng.uniform(0.8, 2.2) * s)),
        "crack_opacity": _r(rng.uniform(0.6, 1.0)),
        "crack_cover": _r(rng.uniform(0.4, 0.95)),
    }


def _tear(rng, h: int, w: int, s: float) -> dict:
    side = min(h, w)
    if rng.random() < 0.6:  # a corner; a centre beyond it straightens the tear into a cut across the corner
        depth, beyond = side * rng.uniform(0.08, 0.25), rng.uniform(0, 0.7)
        radius = depth / (1 - beyond)
        sx, sy = rng.choice([-1, 1]), rng.choice([-1, 1])
        x = (0 if sx < 0 else w - 1) + sx * radius * beyond / math.sqrt(2)
        y = (0 if sy < 0 else h - 1) + sy * radius * beyond / math.sqrt(2)
    else:  # a bite out of one edge; the centre may sit outside, leaving a shallower bite
        radius = side * rng.uniform(0.05, 0.15)
        out = radius * rng.uniform(0.0, 0.5)
        side_index, along = int(rng.integers(4)), rng.uniform(0, 1)
        x = (along * (w - 1), along * (w - 1), -out, w - 1 + out)[side_index]
        y = (-out, h - 1 + out, along * (h - 1), along * (h - 1))[side_index]
    return {
        "x": _r(x),
        "y": _r(y),
        "radius": _r(radius),
        "harmonics": _harmonics(rng, 5, 0.3),
        "jag": _r(max(0.5, rng.uniform(1.5, 4.0) * s)),
        "fibre": _r(max(1.0, rng.uniform(2.0, 6.0) * s)),
        "fill": _paper(rng) if rng.random() < 0.6 else _dark(rng),
    }


def _stain(rng, h: int, w: int, s: float) -> dict:
    radius = min(h, w) * rng.uniform(0.05, 0.3)
    water = rng.random() < 0.4  # a water mark: faint interior, pronounced and often repeated tide lines
    rings = (
        sorted(rng.uniform(0.6, 0.95, size=int(rng.integers(0, 3))).tolist(), reverse=True) if water else []
    )
    return {
        "x": _r(rng.uniform(0, w - 1)),
        "y": _r(rng.uniform(0, h - 1)),
        "radius": _r(radius),
        "harmonics": _harmonics(rng, 4, 0.4),
        "softness": _r(max(0.5, radius * rng.uniform(0.05, 0.3))),
        "tint": [_r(rng.uniform(0.8, 0.95)), _r(rng.uniform(0.6, 0.8)), _r(rng.uniform(0.3, 0.55))],
        "strength": _r(rng.uniform(0.05, 0.25) if water else rng.uniform(0.5, 0.95)),
        "rings": [1.0] + [_r(r) for r in rings],
        "ring": _r(max(0.7, rng.uniform(2.0, 8.0) * s)),
        "ring_strength": _r(rng.uniform(0.6, 1.0) if water else rng.uniform(0.3, 0.7)),
    }


def _crack_network(rng, h: int, w: int, s: float) -> dict:
    """A branching network of emulsion cracks: the craquelure that dried gelatin shows on most damaged prints.

    A few root cracks start inside a region (a patch, or most of the print) and walk in short, jagged steps;
    at each knot a crack may fork at 30-80 degrees into a thinner, shorter child, up to three generations
    deep. Widths are 0.6-6 px at a 512 px print (times ``s``), thinner with each fork; opacity varies along
    each crack and breaks it into pieces. A network is light (paper showing through), dark (dirt-filled
    cracks, tintypes) or grey (a faint crack), one kind per network as on real prints.
    """
    side = min(h, w)
    extent = side * rng.uniform(0.15, 0.9)
    cx, cy = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
    width = max(0.6, math.exp(rng.uniform(math.log(0.6), math.log(6.0))) * s)
    step = max(2.0, rng.uniform(3.0, 9.0) * s)  # knot spacing: short steps make the zig-zag of a crack
    fork = rng.uniform(0.1, 0.35)
    kind = str(rng.choice(["light", "dark", "grey"], p=[0.55, 0.25, 0.2]))
    opacity = (0.2, 0.5) if kind == "grey" else (0.55, 1.0)
    pending = [
        ((cx + rng.normal(0, extent / 4), cy + rng.normal(0, extent / 4)), rng.uniform(0, 2 * math.pi), 0)
        for _ in range(int(rng.integers(1, 5)))
    ]
    strokes = []
    while pending and len(strokes) < 40:
        start, heading, depth = pending.pop()
        length = extent * rng.uniform(0.3, 1.0) * 0.6**depth
        knots = int(min(60, max(3, length / step)))
        points = _walk(rng, start, heading, length, knots, rng.uniform(0.15, 0.45))
        stroke = _stroke(rng, points, width * 0.7**depth, opacity, 0.08, 1.0)
        stroke["widths"] = [max(0.5, x) for x in stroke["widths"]]
        strokes.append(stroke)
        if depth < 3:
            for a, b in pairwise(points):
                if rng.random() < fork:
                    turn = rng.choice([-1, 1]) * rng.uniform(0.5, 1.4)
                    pending.append((b, math.atan2(b[1] - a[1], b[0] - a[0]) + turn, depth + 1))
    color = _paper(rng) if kind == "light" else _dark(rng)
    if kind == "grey":
        color = [_r(c * rng.uniform(0.3, 0.7) + 0.5 * rng.uniform(0.2, 0.8)) for c in _paper(rng)]
    return {"strokes": strokes, "color": color, "softness": _r(rng.uniform(0.0, 0.8) * max(s, 0.5))}
