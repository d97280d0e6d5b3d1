"""Structured defects of an old print: scratches, emulsion cracks, dust and hairs, creases, tears, stains.

Images are float32 tensors (3, H, W) with values in [0, 1] on any device. Geometry arrives as plain Python
numbers in pixel units (x = column, y = row, pixel centres at integer coordinates) so a degradation plan stays
JSON-serialisable; per-pixel randomness (speck positions, crackle, jagged edges, mottling) comes from a
``torch.Generator`` on the image's device seeded with ``seed``, so results are deterministic per device.

Every function returns ``(image, mask)``: the damaged image, (3, H, W) float32 in [0, 1] on the input's
device, and a float32 (1, H, W) mask in {0, 1}. Each defect is an alpha map (how much of the original pixel
the defect replaces, 0..1; creases and stains say how they define it) composited over the image; the mask is
``alpha > MASK_THRESHOLD``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model.degradation.aging import channel_values

# A defect blended in at under 10% is buried under grain and JPEG noise; asking the model to find it would
# teach it to flag clean texture.
MASK_THRESHOLD = 0.1
# (capsule, window pixel) pairs per scatter: keeps stroke rendering to tens of MB on any image size.
_CHUNK = 1 << 20
# Paper base exposed by torn edges and cracked emulsion.
_PAPER = (0.94, 0.92, 0.86)


def _rand(gen: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=like.device, dtype=like.dtype)


def _to_mask(alpha: torch.Tensor) -> torch.Tensor:
    return (alpha > MASK_THRESHOLD).to(torch.float32)


def _interp(values: list[float], u: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear profile through ``values`` evenly spaced over u in [0, 1]."""
    v = torch.tensor(values, dtype=u.dtype, device=u.device)
    if v.numel() == 1:
        return v.expand_as(u)
    pos = u * (v.numel() - 1)
    i = pos.floor().clamp(max=v.numel() - 2).long()
    return torch.lerp(v[i], v[i + 1], pos - i)


def _noise1d(
    gen: torch.Generator, coord: torch.Tensor, start: float, end: float, spacing: float, smooth: bool = True
) -> torch.Tensor:
    """Value noise N(0, 1) at knots ``spacing`` apart over [start, end], sampled at ``coord``; eased between
    knots if ``smooth``, else piecewise linear."""
    knots = torch.randn(math.ceil((end - start) / spacing) + 2, generator=gen, device=coord.device)
    pos = ((coord - start) / spacing).clamp(0, knots.numel() - 1.001)
    i = pos.floor().long()
    f = pos - i
    return torch.lerp(knots[i], knots[i + 1], f * f * (3 - 2 * f) if smooth else f)


def _periodic_noise(
    gen: torch.Generator, theta: torch.Tensor, knots: int, smooth: bool = True
) -> torch.Tensor:
    """Value noise N(0, 1) around the circle, ``knots`` knots per turn, sampled at angle ``theta``.

    ``smooth`` eases between knots (soft, rounded bumps); otherwise the noise is piecewise linear, whose
    corners read as the angular zig-zag of torn fibres.
    """
    values = torch.randn(knots, generator=gen, device=theta.device)
    pos = torch.remainder(theta / (2 * math.pi), 1.0) * knots
    i = pos.floor().long() % knots
    f = pos - pos.floor()
    return torch.lerp(values[i], values[(i + 1) % knots], f * f * (3 - 2 * f) if smooth else f)


# ---------------------------------------------------------------------------------------------------- strokes
def _curve(points: list[list[float]], widths: list[float], opacities: list[float], device: torch.device):
    """A Catmull-Rom spline through the control points, sampled about every pixel.

    Returns points (N, 2), radius (N,) and opacity (N,); widths and opacities are profiles along the curve,
    and the radius tapers over the first and last 4% of the stroke so scratches end in points.
    """
    ctrl = torch.tensor(points, dtype=torch.float32, device=device).view(-1, 2)
    if ctrl.shape[0] == 1:
        ctrl = ctrl.repeat(2, 1)
    k = ctrl.shape[0]
    chord = (ctrl[1:] - ctrl[:-1]).norm(dim=1)
    counts = (chord * 1.25).ceil().clamp_min(1).long()  # the spline's arc is a little longer than its chord
    seg = torch.repeat_interleave(torch.arange(k - 1, device=device), counts)
    first = torch.cumsum(counts, 0) - counts
    frac = (torch.arange(seg.numel(), device=device) - first[seg]) / counts[seg]
    seg = torch.cat([seg, seg.new_tensor([k - 2])])
    f = torch.cat([frac, frac.new_ones(1)])[:, None]
    p0, p1 = ctrl[(seg - 1).clamp_min(0)], ctrl[seg]
    p2, p3 = ctrl[seg + 1], ctrl[(seg + 2).clamp_max(k - 1)]
    pts = 0.5 * (
        2 * p1 + (p2 - p0) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (3 * p1 - p0 - 3 * p2 + p3) * f**3
    )
    u = torch.linspace(0, 1, pts.shape[0], device=device)
    taper = (torch.minimum(u, 1 - u) / 0.04).clamp(max=1).sqrt()
    return pts, _interp(widths, u) / 2 * taper, _interp(opacities, u)


def _render_capsules(a, b, ra, rb, alpha, group, groups: int, height: int, width: int) -> torch.Tensor:
    """Max-composite anti-aliased capsules into ``groups`` coverage maps, (groups, H, W) in [0, 1].

    Capsule i runs from a[i] to b[i] ((N, 2) tensors of x, y) with radius lerped from ra[i] to rb[i], peak
    opacity alpha[i], and goes to map group[i]. Each capsule only visits a square window around its midpoint,
    so the cost follows the total stroke length rather than the image size; capsules are bucketed by window
    size so one wide stroke does not widen the window of every thin one.
    """
    out = torch.zeros(groups * height * width, device=a.device)
    reach = (torch.maximum(ra, rb) + (b - a).norm(dim=1) / 2 + 1).ceil().long()
    for size in reach.unique().tolist():
        sel = (reach == size).nonzero()[:, 0]
        offsets = torch.arange(-size, size + 1, device=a.device, dtype=torch.float32)
        oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
        ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)
        step = max(1, _CHUNK // ox.shape[1])
        for chunk in sel.split(step):
            pa, pb = a[chunk], b[chunk]
            mid = ((pa + pb) / 2).round()
            px, py = mid[:, :1] + ox, mid[:, 1:] + oy
            d = pb - pa
            t = (px - pa[:, :1]) * d[:, :1] + (py - pa[:, 1:]) * d[:, 1:]
            t = (t / (d * d).sum(1, keepdim=True).clamp_min(1e-9)).clamp(0, 1)
            dist = torch.hypot(px - pa[:, :1] - t * d[:, :1], py - pa[:, 1:] - t * d[:, 1:])
            radius = torch.lerp(ra[chunk, None], rb[chunk, None], t)
            cov = (radius + 0.5 - dist).clamp(0, 1) * alpha[chunk, None]  # box-filtered edge
            inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
            flat = py.clamp(0, height - 1).long() * width + px.clamp(0, width - 1).long()
            idx = group[chunk, None] * (height * width) + flat
            out.scatter_reduce_(0, idx.reshape(-1), torch.where(inside, cov, 0.0).reshape(-1), reduce="amax")
    return out.view(groups, height, width)


def _stroke_capsules(strokes: list[dict], device: torch.device):
    """Capsules for a list of strokes; group 0 holds bright strokes, group 1 dark ones."""
    parts = []
    for s in strokes:
        pts, radius, opacity = _curve(s["points"], s["widths"], s["opacities"], device)
        group = torch.full((pts.shape[0] - 1,), 0 if s["bright"] else 1, dtype=torch.long, device=device)
        parts.append((pts[:-1], pts[1:], radius[:-1], radius[1:], (opacity[:-1] + opacity[1:]) / 2, group))
    if not parts:
        empty = torch.zeros((0, 2), device=device)
        return empty, empty, empty[:, 0], empty[:, 0], empty[:, 0], empty[:, 0].long()
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def _composite_two(image, alpha, bright_color, dark_color):
    out = image + (channel_values(bright_color, image) - image) * alpha[0]
    out = out + (channel_values(dark_color, image) - out) * alpha[1]
    return out.clamp(0, 1), _to_mask(alpha.amax(0, keepdim=True))


def add_scratches(
    image: torch.Tensor, strokes: list[dict], bright_color: list[float], dark_color: list[float]
):
    """Scratches: thin curves of paper-bright (emulsion scraped off the print) or dark (a scratched negative
    passes more light) colour.

    ``strokes``: dicts with "points" (>= 2 [x, y] control points of a Catmull-Rom spline), "widths" (full
    width in px, a profile along the stroke), "opacities" (0..1 profile; zeros break the scratch into pieces)
    and "bright" (bool: ``bright_color`` or ``dark_color``, RGB in [0, 1]). Returns (image, mask).
    """
    _, h, w = image.shape
    alpha = _render_capsules(*_stroke_capsules(strokes, image.device), 2, h, w).to(image.dtype)
    return _composite_two(image, alpha, bright_color, dark_color)


def add_dust(
    image: torch.Tensor,
    count: int,
    radius: list[float],
    bright_fraction: float,
    hairs: list[dict],
    bright_color: list[float],
    dark_color: list[float],
    seed: int,
):
    """Dust specks and hairs/fibres on the print, negative or scanner glass.

    ``count`` specks are placed uniformly with radii in ``radius`` [lo, hi] px, mostly small (the exponent of
    a log-uniform draw is squared); each speck is three overlapping disks so it reads as an irregular blob.
    A share ``bright_fraction`` are bright (dust on the negative prints white), the rest dark. ``hairs`` are
    strokes as in ``add_scratches``. Returns (image, mask).
    """
    _, h, w = image.shape
    gen = torch.Generator(device=image.device).manual_seed(seed)
    ref = torch.empty(0, device=image.device)
    centre = _rand(gen, ref, count, 1, 2) * torch.tensor([w - 1, h - 1], device=image.device)
    lo, hi = radius
    r = lo * (hi / lo) ** (_rand(gen, ref, count, 1) ** 2)
    offset = (_rand(gen, ref, count, 3, 2) * 2 - 1) * r[..., None] * 0.6
    sub_radius = (r * (0.45 + 0.55 * _rand(gen, ref, count, 3))).reshape(-1)
    opacity = (0.55 + 0.45 * _rand(gen, ref, count, 1)).expand(-1, 3).reshape(-1)
    group = (_rand(gen, ref, count, 1) >= bright_fraction).long().expand(-1, 3).reshape(-1)
    pts = (centre + offset).reshape(-1, 2)
    hair = _stroke_capsules(hairs, image.device)
    capsules = [
        torch.cat([x, y])
        for x, y in zip((pts, pts, sub_radius, sub_radius, opacity, group), hair, strict=True)
    ]
    alpha = _render_capsules(*capsules, 2, h, w).to(image.dtype)
    return _composite_two(image, alpha, bright_color, dark_color)


def add_cracks(image: torch.Tensor, networks: list[dict]):
    """Emulsion cracks: branching networks of fine cracks (``shapes._crack_network``), composited one
    network at a time in its own colour (paper-light, dark or grey) with edges softened by a Gaussian of
    ``softness`` px, as the crack's rim is where the gelatin lifted.

    ``networks``: dicts with "strokes" (as in ``add_scratches``; "bright" is ignored), "color" (RGB in
    [0, 1]) and "softness" (px, 0 = the anti-aliased edge only). Returns (image, mask): the mask is every
    pixel a crack replaced by more than ``MASK_THRESHOLD``, soft rim included.
    """
    _, h, w = image.shape
    out, coverage = image, torch.zeros_like(image[:1])
    for network in networks:
        a, b, ra, rb, alpha, _ = _stroke_capsules(network["strokes"], image.device)
        cover = _render_capsules(a, b, ra, rb, alpha, torch.zeros_like(alpha).long(), 1, h, w)
        cover = _soften(cover[None], network["softness"])[0].to(image.dtype)
        out = out + (channel_values(network["color"], image) - out) * cover
        coverage = torch.maximum(coverage, cover)
    return out.clamp(0, 1), _to_mask(coverage)


def _soften(alpha: torch.Tensor, sigma: float) -> torch.Tensor:
    """(1, 1, H, W) alpha blurred by a Gaussian of ``sigma`` px (unchanged below 0.3 px)."""
    if sigma < 0.3:
        return alpha
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, device=alpha.device, dtype=alpha.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    pad = F.pad(alpha, (radius, radius, radius, radius), mode="constant")
    pad = F.conv2d(pad, kernel.view(1, 1, 1, -1))
    return F.conv2d(pad, kernel.view(1, 1, -1, 1))


# ---------------------------------------------------------------------------------------------------- creases
_RIDGE = math.sqrt(2 * math.e)  # 1 / max(z * exp(-z^2)): normalises the ridge profile's peak to 1


def add_creases(image: torch.Tensor, creases: list[dict], seed: int):
    """Folds across the print: a shaded ridge, content pulled into the fold, and cracked emulsion along it.

    ``creases``: dicts with "x", "y" (a point on the fold, px), "angle" (its direction, radians), "wobble"
    ([[amplitude px, period px, phase], ...] slow bends), "width" (px: the ridge's 1/e half-width), "shade"
    (peak brightness change: one side lit, the other shadowed), "shift" (px the content moves toward the
    fold), "crack_width" (px), "crack_opacity" (0..1) and "crack_cover" (0..1 share of the fold where the
    emulsion cracked, showing paper). Returns (image, mask); the mask holds the cracks and the ridge band
    (within about 1.5 widths of the fold, narrower for ridges shaded under 15%).
    """
    _, h, w = image.shape
    gen = torch.Generator(device=image.device).manual_seed(seed)
    diag = math.hypot(h, w)
    rows = torch.arange(h, device=image.device, dtype=image.dtype)[:, None]
    cols = torch.arange(w, device=image.device, dtype=image.dtype)[None, :]
    out, alpha = image.clone(), torch.zeros_like(image[:1])
    for c in creases:
        cos, sin = math.cos(c["angle"]), math.sin(c["angle"])
        # Work only on the band where the fold has any effect (ridge to 3.5 widths, crack, bends).
        reach = 3.5 * c["width"] + c["crack_width"] + 2 + sum(abs(a) for a, _, _ in c["wobble"])
        idx = (((rows - c["y"]) * cos - (cols - c["x"]) * sin).abs() < reach).flatten().nonzero()[:, 0]
        ys, xs = (idx // w).to(image.dtype), (idx % w).to(image.dtype)
        u = (xs - c["x"]) * cos + (ys - c["y"]) * sin  # along the fold
        d = (ys - c["y"]) * cos - (xs - c["x"]) * sin  # across it
        for amplitude, period, phase in c["wobble"]:
            d = d + amplitude * torch.sin(2 * math.pi * u / period + phase)
        z = d / c["width"]
        bump = torch.exp(-z * z)
        ridge = _RIDGE * z * bump
        # Sample from farther out so the content is squeezed toward the fold line, then shade the ridge.
        shift = c["shift"] * ridge
        values = _bilinear(out, xs - sin * shift, ys + cos * shift) * (1 + c["shade"] * ridge)
        # A crack is not a ruled line: it zig-zags, swells where flakes came off, fades and breaks.
        cw = c["crack_width"]
        jitter = _noise1d(gen, u, -diag, diag, max(1.5, 2 * cw), smooth=False) * 0.3 * cw
        swell = (1 + 0.35 * _noise1d(gen, u, -diag, diag, max(2.0, 4 * cw))).clamp_min(0)
        fading = (0.75 + 0.25 * _noise1d(gen, u, -diag, diag, max(3.0, 8 * cw))).clamp(0, 1)
        cover = _noise1d(gen, u, -diag, diag, 6 * c["width"]) * 0.5 + 0.5
        visible = ((c["crack_cover"] - cover) * 8 + 0.5).clamp(0, 1)
        core = (cw / 2 * swell + 0.5 - (d + jitter).abs()).clamp(0, 1)
        crack = core * visible * fading * c["crack_opacity"]
        values = values + (channel_values(_PAPER, image)[:, :, 0] - values) * crack
        out.view(3, -1)[:, idx] = values.clamp(0, 1)
        band = bump * min(1.0, c["shade"] / 0.15)  # weak ridges are masked narrower
        flat = alpha.view(-1)
        flat[idx] = torch.maximum(flat[idx], torch.maximum(band, crack))
    return out, _to_mask(alpha)


def _bilinear(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sample (3, H, W) at float pixel positions (N,) with bilinear weights, clamped to the border: (3, N)."""
    _, h, w = image.shape
    x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    x0, y0 = x.floor().long(), y.floor().long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    fx, fy = x - x0, y - y0
    flat = image.reshape(3, -1)
    top = torch.lerp(flat[:, y0 * w + x0], flat[:, y0 * w + x1], fx)
    bottom = torch.lerp(flat[:, y1 * w + x0], flat[:, y1 * w + x1], fx)
    return torch.lerp(top, bottom, fy)


# ---------------------------------------------------------------------------------------------------- blobs
def _blob(gen, image, b: dict, margin: float, octaves: list[tuple[float, float, bool]]):
    """Polar description of an irregular closed outline on its bounding box clipped to the image.

    The outline is r(theta) = radius * (1 + sum_k a_k sin(k theta + phase_k)) for k = 2, 3, ... from
    b["harmonics"] plus noise ``octaves`` of (amplitude px, knot spacing px, smooth) along the perimeter.
    Returns (ys, xs, dist, outline, theta): each pixel's distance from the centre and the outline's radius in
    its direction, so ``dist - outline`` is about the signed distance (px, negative inside). None when the
    blob misses the image.
    """
    _, h, w = image.shape
    rough = sum(amplitude for amplitude, _, _ in octaves)
    extent = b["radius"] * (1 + sum(abs(a) for a, _ in b["harmonics"])) + 3 * rough + margin
    y0, y1 = max(0, math.floor(b["y"] - extent)), min(h, math.ceil(b["y"] + extent) + 1)
    x0, x1 = max(0, math.floor(b["x"] - extent)), min(w, math.ceil(b["x"] + extent) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    dy = torch.arange(y0, y1, device=image.device, dtype=image.dtype)[:, None] - b["y"]
    dx = torch.arange(x0, x1, device=image.device, dtype=image.dtype)[None, :] - b["x"]
    theta = torch.atan2(dy, dx)
    # The outline depends on the angle alone: tabulate it at two samples per pixel of perimeter and look
    # pixels up, instead of evaluating harmonics and noise at every pixel.
    size = max(64, math.ceil(4 * math.pi * (extent - margin)))
    angles = torch.arange(size, device=image.device, dtype=image.dtype) * (2 * math.pi / size) - math.pi
    table = torch.ones_like(angles)
    for k, (amplitude, phase) in enumerate(b["harmonics"], start=2):
        table = table + amplitude * torch.sin(k * angles + phase)
    table = table * b["radius"]
    turn = 2 * math.pi * b["radius"]
    for amplitude, spacing, smooth in octaves:
        table = table + amplitude * _periodic_noise(gen, angles, max(8, round(turn / spacing)), smooth)
    pos = (theta + math.pi) * (size / (2 * math.pi))  # atan2 is in [-pi, pi]
    i = pos.floor().long().clamp(max=size - 1)
    outline = torch.lerp(table[i], table[torch.where(i == size - 1, 0, i + 1)], pos - i)
    return slice(y0, y1), slice(x0, x1), torch.hypot(dy, dx), outline, theta


def add_tears(image: torch.Tensor, tears: list[dict], seed: int):
    """Torn-off corners and bites out of the edges, showing what the print lay on.

    ``tears``: dicts with "x", "y" (centre of the missing piece, px, on or beyond the border for a torn
    corner or edge), "radius" (px), "harmonics" ([[amplitude, phase], ...], the coarse shape), "jag" (px of
    angular edge roughness at a 16 px scale, with a half and a quarter of it at 5 and 1.5 px), "fibre" (px,
    typical width of the white paper core exposed along the tear) and "fill" (RGB in [0, 1]: scanner lid,
    mount board). Returns (image, mask).
    """
    gen = torch.Generator(device=image.device).manual_seed(seed)
    out = image.clone()
    alpha = torch.zeros_like(image[:1])
    for t in tears:
        jag = t["jag"]  # torn paper: angular at every scale down to the fibres
        blob = _blob(
            gen, image, t, t["fibre"] * 4 + 2, [(jag, 16, False), (jag / 2, 5, False), (jag / 4, 1.5, False)]
        )
        if blob is None:
            continue
        ys, xs, dist, outline, theta = blob
        sd = dist - outline
        region = out[:, ys, xs]
        wobble = _periodic_noise(gen, theta, max(16, round(2 * math.pi * t["radius"] / 6)))
        # Where the paper split at a slant its white core shows as a wide band; elsewhere it barely shows.
        fibre = (t["fibre"] * torch.exp(0.6 * wobble) + 0.5 - sd).clamp(0, 1) * 0.9
        missing = (0.5 - sd).clamp(0, 1)
        region = region + (channel_values(_PAPER, image) - region) * fibre
        region = region + (channel_values(t["fill"], image) - region) * missing
        out[:, ys, xs] = region
        alpha[0, ys, xs] = torch.maximum(alpha[0, ys, xs], torch.maximum(fibre, missing))
    return out.clamp(0, 1), _to_mask(alpha)


def add_stains(image: torch.Tensor, stains: list[dict], seed: int):
    """Water marks and stains: a soft, mottled, tinted blotch and darker tide lines where the liquid dried.

    ``stains``: dicts with "x", "y", "radius" (px), "harmonics" (as in ``add_tears``), "softness" (px of
    the interior's soft edge), "tint" (RGB multiplier, yellow-brown), "strength" (0..1 blend of the tinted
    interior), "rings" (outline scales of the tide lines, 1.0 = the stain's edge), "ring" (px over which a
    tide line fades inward from its sharp outer edge) and "ring_strength" (0..1). The mask's alpha is the
    mean fraction by which the channels darken, so a faint water mark is masked only along its tide lines.
    Returns (image, mask).
    """
    gen = torch.Generator(device=image.device).manual_seed(seed)
    out = image.clone()
    alpha = torch.zeros_like(image[:1])
    for s in stains:
        blob = _blob(gen, image, s, 4 * s["softness"], [(0.06 * s["radius"], 0.3 * s["radius"], True)])
        if blob is None:
            continue
        ys, xs, dist, outline, _ = blob
        region = out[:, ys, xs]
        cells = _rand(gen, image, 1, 1, 6, 6)  # the liquid soaked in unevenly
        mottle = F.interpolate(cells, size=dist.shape, mode="bilinear", align_corners=True)[0, 0]
        interior = torch.sigmoid((outline - dist) / s["softness"]) * s["strength"] * (0.6 + 0.4 * mottle)
        ring = torch.zeros_like(dist)
        for i, scale in enumerate(s["rings"]):  # dirt carried to the rim: sharp outside, fading inward
            sd = dist - outline * scale
            line = (
                (0.5 - sd).clamp(0, 1) * torch.exp(sd.clamp(max=0) / s["ring"]) * s["ring_strength"] * 0.8**i
            )
            ring = torch.maximum(ring, line)
        tint = channel_values(s["tint"], image)
        region = region + (region * tint - region) * interior
        region = region + (region * tint**1.5 * 0.85 - region) * ring
        out[:, ys, xs] = region
        absorbed = 1 - sum(s["tint"]) / 3
        damage = torch.maximum(interior * absorbed, ring * (1 - 0.85 * sum(t**1.5 for t in s["tint"]) / 3))
        alpha[0, ys, xs] = torch.maximum(alpha[0, ys, xs], damage)
    return out.clamp(0, 1), _to_mask(alpha)
