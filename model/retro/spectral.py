"""What a black-and-white emulsion saw: exposure weights for linear sRGB, by spectral sensitivity class.

The photo's colours are turned into spectra by Mallett & Yuksel's spectral upsampling (2019, via
colour-science): every linear sRGB colour is r*B_r + g*B_g + b*B_b for three fixed reflectance spectra B that
sum to a flat white. An emulsion's response to a spectrum lit by daylight is the integral of
reflectance x illuminant x sensitivity, so for this upsampling it is linear in r, g, b, with weights
w_c = integral B_c(l) D65(l) S(l) dl, normalised so that white exposes 1. The weights come from the spectra,
not from a hand-tuned channel mix: a blue-sensitive plate renders red lips black and blue skies white because
its sensitivity ends near 500 nm.

Sensitivity classes (docs/RETRO.md has the sources): ``blue``, silver halide alone (collodion and "ordinary"
dry plates, UV to ~500 nm); ``ortho``, dye-sensitised to green up to ~590 nm (Vogel 1873; "isochromatic"
plates from the 1880s; amateur roll film such as Verichrome until the 1950s); ``pan``, sensitive through the
red to ~670 nm (Wratten & Wainwright plates 1906; roll film from the 1920s-30s).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np

# Smooth sensitivity curves, relative to their peak, as sums of lobes (centre nm, width nm, height) and a
# long-wavelength cut-off (nm) with a ~10 nm edge. Shapes follow the wedge spectrograms published for each
# class (silver bromide's native blue peak near 430 nm; the sensitising dye's green lobe near 550 nm with
# the "green gap" near 500 nm; panchromatic red lobe near 630 nm).
_LOBES = {
    "blue": (((430, 45, 1.0),), 500),
    "ortho": (((430, 45, 1.0), (550, 25, 0.8)), 590),
    "pan": (((430, 45, 1.0), (550, 25, 0.75), (630, 25, 0.7)), 670),
}


def sensitivity(kind: str, wavelengths: np.ndarray) -> np.ndarray:
    """Relative spectral sensitivity of a ``blue``, ``ortho`` or ``pan`` emulsion at ``wavelengths`` (nm)."""
    lobes, cutoff = _LOBES[kind]
    s = sum(h * np.exp(-0.5 * ((wavelengths - c) / w) ** 2) for c, w, h in lobes)
    below = 1 / (1 + np.exp((360 - wavelengths) / 8))  # glass optics absorb the ultraviolet
    return s * below / (1 + np.exp((wavelengths - cutoff) / 10))


@cache
def exposure_weights(kind: str) -> tuple[float, float, float]:
    """(w_r, w_g, w_b), summing to 1: an emulsion's exposure from a linear sRGB colour under daylight."""
    with warnings.catch_warnings():  # colour-science warns that matplotlib is absent: we plot nothing
        warnings.simplefilter("ignore")
        import colour

    basis = colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019
    wavelengths = basis.wavelengths
    daylight = colour.SDS_ILLUMINANTS["D65"].copy().align(basis.shape).values
    response = (basis.values * (daylight * sensitivity(kind, wavelengths))[:, None]).sum(axis=0)
    weights = response / response.sum()
    return (float(weights[0]), float(weights[1]), float(weights[2]))
