"""Era presets: fixed renderer parameters for six period processes (sources in docs/RETRO.md)."""

from __future__ import annotations

from model.retro.params import RetroParams

ERAS: dict[str, RetroParams] = {
    # Wet collodion glass negative (blue-sensitive), contact-printed on gold-toned albumen printing-out paper,
    # mounted as a carte de visite. Long-scale, soft paper; purple-brown image; yellowed highlights.
    "1860s-albumen": RetroParams(
        sensitivity="blue", negative_gamma=1.1, negative_fog=0.15, paper_range=1.6, paper_dmax=1.5, toe=0.8,
        tone=(0.88, 1.0, 0.92), paper_tint=(0.93, 0.85, 0.62), highlight_loss=0.35,
        format_mm=89, print_mm=89, grain=0.0, blur_mm=0.04, halation=0.08, halation_mm=0.4, vignette=28,
        paper_texture=0.015, wear=0.3,
    ),
    # Isochromatic (orthochromatic) dry plate, gelatin-silver print sulfide-toned to sepia; matte surface.
    "1900s-sepia": RetroParams(
        sensitivity="ortho", negative_gamma=0.9, negative_fog=0.2, paper_range=1.3, paper_dmax=1.6,
        tone=(0.72, 0.95, 1.3), paper_tint=(0.95, 0.91, 0.82), highlight_loss=0.1,
        format_mm=127, print_mm=127, grain=6.0, blur_mm=0.03, halation=0.05, vignette=22,
        paper_texture=0.02, wear=0.2,
    ),
    # Amateur orthochromatic roll film (Verichrome class), 6x9 negative, contact print on glossy
    # gelatin-silver paper, neutral-cold black.
    "1930s-silver-gelatin": RetroParams(
        sensitivity="ortho", negative_gamma=0.8, negative_fog=0.22, paper_range=1.05, paper_dmax=1.9,
        tone=(1.0, 1.0, 0.98), paper_tint=(0.93, 0.93, 0.9), format_mm=84, print_mm=84, grain=14.0,
        blur_mm=0.03, halation=0.06, vignette=20, paper_texture=0.005, wear=0.15,
    ),
    # Studio portrait on panchromatic sheet film, printed soft on warm-tone paper, coloured by hand with
    # transparent oil or dye washes.
    "1950s-hand-tinted": RetroParams(
        sensitivity="pan", negative_gamma=0.65, negative_fog=0.2, paper_range=1.3, paper_dmax=1.7,
        tone=(0.92, 1.0, 1.1), paper_tint=(0.95, 0.93, 0.86), hand_tint=0.55, format_mm=127, print_mm=203,
        grain=8.0, blur_mm=0.02, vignette=12, paper_texture=0.01,
    ),
    # 1970s chromogenic colour (slide or print): cyan and yellow dyes faded, drifting to red-magenta;
    # stained base; red halation.
    "1970s-faded-colour": RetroParams(
        sensitivity="colour", negative_gamma=0.6, negative_fog=0.25, paper_range=1.2, paper_dmax=2.0,
        paper_tint=(0.95, 0.92, 0.82), dye_fade=(0.45, 0.1, 0.35), saturation=0.9, format_mm=36,
        print_mm=127, grain=11.0, blur_mm=0.008, halation=0.1, halation_mm=0.15,
        halation_tint=(1.0, 0.3, 0.05), vignette=18, paper_texture=0.005, wear=0.1,
    ),
    # Integral instant print (SX-70 class), aged warm: orange-red shift, low contrast, lower saturation.
    "1980s-instant": RetroParams(
        sensitivity="colour", negative_gamma=0.6, negative_fog=0.2, paper_range=1.6, paper_dmax=1.6,
        shoulder=0.8, paper_tint=(0.95, 0.93, 0.86), dye_fade=(0.2, 0.05, 0.1),
        colour_balance=(0.06, 0.0, -0.08), saturation=0.8, format_mm=79, print_mm=79, grain=5.0,
        blur_mm=0.04, halation=0.05, halation_tint=(1.0, 0.5, 0.2), vignette=25, paper_texture=0.003,
    ),
}  # fmt: skip


def era(name: str) -> RetroParams:
    """The named era's parameters; a bad name lists the valid ones."""
    try:
        return ERAS[name]
    except KeyError:
        raise ValueError(f"unknown era {name!r}; choose one of {sorted(ERAS)}") from None
