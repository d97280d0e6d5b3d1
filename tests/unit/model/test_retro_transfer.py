"""Sampled looks, the classical transfer baselines and the retro evaluation (model/retro/)."""

import numpy as np
import skimage.data
from PIL import Image
from skimage.color import rgb2lab

from model.retro.baselines import histogram, reinhard
from model.retro.evaluation import content_preservation, score_transfer, transfer_set
from model.retro.params import RetroParams
from model.retro.sampling import sample_params


def _photos():
    images = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    return [(str(i), np.asarray(Image.fromarray(x).resize((64, 48)))) for i, x in enumerate(images)]


def test_sampled_looks_are_valid_reproducible_and_varied():
    looks = [sample_params(np.random.default_rng([0, i])) for i in range(200)]
    assert looks[7] == sample_params(np.random.default_rng([0, 7]))
    assert all(RetroParams.from_json(p.to_json()) == p for p in looks)
    assert {p.sensitivity for p in looks} == {"blue", "ortho", "pan", "colour"}
    assert any(p.hand_tint for p in looks) and any(max(p.dye_fade) > 0 for p in looks)
    assert all(p.hand_tint == 0 for p in looks if p.sensitivity == "colour")


def test_reinhard_moves_colour_statistics_to_the_reference_and_histogram_matches():
    photo, reference = _photos()[0][1], _photos()[1][1]
    out = reinhard(photo, reference)
    lab_out, lab_ref, lab_in = (rgb2lab(x).reshape(-1, 3) for x in (out, reference, photo))
    assert (
        np.abs(lab_out.mean(0) - lab_ref.mean(0)).max() < np.abs(lab_in.mean(0) - lab_ref.mean(0)).max() / 3
    )
    matched = histogram(photo, reference)
    gap = np.sort(matched[..., 0].ravel()).astype(int) - np.sort(reference[..., 0].ravel()).astype(int)
    assert np.abs(gap).mean() < 2


def test_transfer_scores_reward_the_true_look():
    photos = _photos()
    pairs = transfer_set(photos, seed=1)
    assert len(pairs) == 3 and all(p.target.shape == p.photo.shape for p in pairs)
    truth = {id(p.photo): p.target for p in pairs}
    perfect = score_transfer(pairs, lambda photo, reference: truth[id(photo)])
    untouched = score_transfer(pairs, lambda photo, reference: photo)
    assert perfect["psnr"] == float("inf") or perfect["psnr"] > 90
    assert untouched["psnr"] < 40 and untouched["ssim"] < perfect["ssim"]
    kept = content_preservation(photos)
    assert len(kept) >= 6 and all(0.3 < v <= 1 for v in kept.values())
