"""The independent re-implementation of the published BOPBtL degradation recipe
(model/degradation/published.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import model.degradation.published
from model.degradation.published import GRAYSCALE_PROBABILITY, degrade_published, synthesize_scratches

ENGINE_MODULES = {"engine", "artifacts", "defects", "aging", "mixture"}


@pytest.fixture(scope="module")
def clean(photo: Image.Image) -> np.ndarray:
    return np.asarray(photo.convert("RGB")).copy()


def _is_gray(image: np.ndarray) -> bool:
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    # About 1% of draws apply no operation (0.3 ** 4); cap them so one identity draw cannot swamp the mean.
    return min(50.0, 10 * np.log10(255.0**2 / max(mse, 1e-10)))


def test_same_seed_is_deterministic_and_seeds_differ(clean: np.ndarray) -> None:
    first = degrade_published(clean, np.random.default_rng(7), scratches=True)
    again = degrade_published(clean, np.random.default_rng(7), scratches=True)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    others = [degrade_published(clean, np.random.default_rng(seed))[0] for seed in range(8, 13)]
    assert all(not np.array_equal(first[0], other) for other in others)


@pytest.mark.parametrize("shape", [(128, 128), (8, 8), (8, 57), (33, 10)])
def test_shapes_and_dtypes(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for seed in range(10):
        degraded, target, mask = degrade_published(
            image, np.random.default_rng(seed), scratches=seed % 2 == 0
        )
        assert degraded.shape == target.shape == (*shape, 3)
        assert degraded.dtype == target.dtype == np.uint8
        assert mask.shape == shape and mask.dtype == np.bool_
        assert mask.any() == (seed % 2 == 0)


def test_input_is_not_modified(clean: np.ndarray) -> None:
    before = clean.copy()
    degrade_published(clean, np.random.default_rng(0), scratches=True)
    np.testing.assert_array_equal(clean, before)


@pytest.mark.parametrize(
    "bad", [np.zeros((7, 32, 3), np.uint8), np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.float32)]
)
def test_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        degrade_published(bad, np.random.default_rng(0))


def test_grayscale_rate_and_target() -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    gray_target = Image.fromarray(image).convert("L")
    draws = 300
    n_gray = 0
    for seed in range(draws):
        degraded, target, _ = degrade_published(image, np.random.default_rng(seed))
        if _is_gray(target):
            n_gray += 1
            np.testing.assert_array_equal(target[..., 0], np.asarray(gray_target))
            assert _is_gray(degraded)
        else:
            np.testing.assert_array_equal(target, image)
    # Published rate 0.1: expect ~30 of 300 (sd ~5); these bounds only catch a wrong rate, not noise.
    assert 0.05 * draws <= n_gray <= 0.17 * draws
    assert GRAYSCALE_PROBABILITY == 0.1


def test_mean_psnr_is_plausible(clean: np.ndarray) -> None:
    psnrs = [_psnr(*degrade_published(clean, np.random.default_rng(seed))[:2]) for seed in range(30)]
    # Measured ~21 dB on this 128 px photo (20.4-23.2 dB over 40 other seed sets of 30 draws).
    assert 18.0 <= float(np.mean(psnrs)) <= 26.0
    # The recipe leaves some draws mild and makes others heavy: a spread, not one fixed strength.
    assert max(psnrs) - min(psnrs) > 5.0


def test_scratches_change_the_pixels_under_the_mask_only(clean: np.ndarray) -> None:
    for seed in range(10):
        plain, target, no_mask = degrade_published(clean, np.random.default_rng(seed))
        scratched, target_s, mask = degrade_published(clean, np.random.default_rng(seed), scratches=True)
        assert not no_mask.any()
        assert mask.any()
        np.testing.assert_array_equal(target, target_s)
        changed = (scratched != plain).any(axis=-1)
        # Light and dark scratches may cross and cancel, and a light one may land on white, so not all.
        assert changed[mask].mean() > 0.8
        # Scratches are drawn last from the rng, so away from their strokes the image is untouched.
        near = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert not changed[~near].any()


def test_scratches_are_thin_lines_on_flat_gray() -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    for seed in range(20):
        out, mask = synthesize_scratches(flat, np.random.default_rng(seed))
        assert mask.any()
        # Thin strokes: even six long 2 px scratches cover well under half of the frame.
        assert mask.mean() < 0.4
        diff = np.abs(out.astype(np.int16) - 128).max(axis=-1)
        assert np.median(diff[mask]) >= 10
        assert _is_gray(out)  # scratches are neutral, so a grayscale photo stays grayscale


def test_independent_of_the_patina_degradation_engine() -> None:
    tree = ast.parse(Path(model.degradation.published.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            imported.add(base)
            imported.update(f"{base}.{alias.name}".lstrip(".") for alias in node.names)
    assert {name.split(".")[0] for name in imported} <= {"__future__", "io", "cv2", "numpy", "PIL"}
    for name in imported:
        assert not ENGINE_MODULES & set(name.split(".")), name
