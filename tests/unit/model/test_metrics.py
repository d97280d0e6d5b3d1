import numpy as np
import pytest

from model.metrics import mask_iou, psnr, ssim


def test_psnr_known_value():
    clean = np.full((8, 8, 3), 100, np.uint8)
    noisy = clean.copy()
    noisy[0, 0, 0] = 110  # MSE = 100 / 192
    assert psnr(noisy, clean) == pytest.approx(10 * np.log10(255**2 / (100 / 192)))
    assert psnr(clean, clean) == float("inf")


def test_ssim_identity_and_degradation(photo):
    clean = np.asarray(photo)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    assert ssim(clean, clean) == pytest.approx(1.0)
    assert 0 < ssim(noisy, clean) < 0.9
    assert ssim(
        np.asarray(photo.convert("L"))[:5, :5], np.asarray(photo.convert("L"))[:5, :5]
    ) == pytest.approx(1)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))


def test_mask_iou():
    a = np.zeros((4, 4), np.uint8)
    b = np.zeros((4, 4), np.float32)
    assert mask_iou(a, b) == 1.0
    a[0, :] = 255
    b[0, :2] = 1.0
    assert mask_iou(a, b) == pytest.approx(0.5)
