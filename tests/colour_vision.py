"""Colour-vision deficiency simulation and colour difference, for the colour-blind chart tests.

Simulation: Machado, Oliveira & Fernandes (2009), "A Physiologically-based Model for Simulation
of Color Vision Deficiency", IEEE TVCG 15(6) — the severity-1.0 matrices (full protanopia,
deuteranopia, tritanopia), applied to linear sRGB and clipped. Difference: CIE 1976 ΔE*ab
(Euclidean distance in CIELAB, D65 white): about 2.3 is a just-noticeable difference; the
tests ask for 10 or more between neighbouring steps of a colour scale.

>>> round(delta_e((0, 0, 0), (255, 255, 255)), 1)
100.0
>>> round(delta_e((214, 39, 40), (44, 160, 44)), 1) > 70          # red against green: far apart …
True
>>> round(delta_e((214, 39, 40), (44, 160, 44), "deuteranopia"), 1) < 20   # … not without green cones
True
"""

from __future__ import annotations

import numpy as np

#: Machado et al. 2009, severity 1.0, for linear RGB
MACHADO_2009 = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_D65 = np.array([0.95047, 1.0, 1.08883])


def _linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, dtype=float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb, deficiency: str | None = None) -> np.ndarray:
    """CIELAB of an sRGB colour (0–255 each), as seen with ``deficiency`` (None: normal vision)."""
    lin = _linear(rgb)
    if deficiency is not None:
        lin = np.clip(MACHADO_2009[deficiency] @ lin, 0, 1)
    t = (_SRGB_TO_XYZ @ lin) / _D65
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b, deficiency: str | None = None) -> float:
    """CIE76 ΔE*ab between sRGB colours ``a`` and ``b`` as seen with ``deficiency``."""
    return float(np.linalg.norm(lab(a, deficiency) - lab(b, deficiency)))
