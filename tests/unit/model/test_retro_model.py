"""The reference-guided retro model: parameter targets, the generator's contracts, training that learns."""

import json

import numpy as np
import pytest
import torch

from model.checkpoints import load_generator, save_generator
from model.retro import targets
from model.retro.config import tiny
from model.retro.eras import ERAS
from model.retro.gan import RetroGAN
from model.retro.generator import RetroModel, stylize
from model.retro.params import RetroParams
from model.retro.sampling import sample_params
from pipeline.training.retro_pool import RetroPool


@pytest.mark.parametrize("seed", range(20))
def test_parameters_survive_the_target_vector_and_json(seed):
    params = sample_params(np.random.default_rng(seed))
    vector = targets.to_vector(params)
    assert vector.shape == (targets.SIZE,) and vector.min() >= 0 and vector.max() <= 1
    decoded = targets.from_vector(vector, targets.sensitivity_index(params))
    assert torch.allclose(targets.to_vector(decoded), vector, atol=1e-3)
    assert RetroParams.from_json(decoded.to_json()) == decoded  # what `patina retro estimate` prints


def test_every_era_lies_inside_the_target_ranges():
    for name, params in ERAS.items():
        for field, index, low, high in targets.RANGES:
            value = getattr(params, field)
            value = value[index] if index is not None else value
            assert low <= value <= high, (name, field, value)


def _randomised(cfg):
    torch.manual_seed(1)
    model = RetroModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_an_untrained_model_returns_the_photo():
    model = RetroModel(tiny()).eval()
    photo, reference = torch.rand(1, 3, 40, 56) * 2 - 1, torch.rand(1, 3, 30, 30) * 2 - 1
    assert torch.allclose(model.transfer(photo, reference), photo, atol=1e-5)


@pytest.mark.parametrize("shape", [(301, 517), (64, 65)])
def test_tiles_give_the_whole_image_result(shape):
    model = _randomised(tiny())
    photo, reference = torch.rand(1, 3, *shape) * 2 - 1, torch.rand(1, 3, 50, 70) * 2 - 1
    with torch.no_grad():
        style = model.encoder(reference)
        whole = model.generator(photo, style.condition())
        tiled = stylize(model, photo, style, tile=96)
    assert (whole - photo).abs().max() > 0.05  # the model does change the photo
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_the_encoder_reads_a_reference_alike_at_any_size():
    model = _randomised(tiny())
    reference = torch.nn.functional.interpolate(torch.rand(1, 3, 24, 32), (240, 320), mode="bilinear")
    small = torch.nn.functional.interpolate(reference, (120, 160), mode="area")
    with torch.no_grad():
        large_style, small_style = model.encoder(reference * 2 - 1), model.encoder(small * 2 - 1)
    assert torch.allclose(large_style.params, small_style.params, atol=0.02)


def test_a_retro_checkpoint_round_trips(tmp_path):
    model = _randomised(tiny())
    path = tmp_path / "retro.safetensors"
    save_generator(path, model, tiny(), step=5, family_name="retro")
    loaded, meta, model_id = load_generator(path)
    assert meta.family == "retro" and isinstance(loaded, RetroModel) and model_id.startswith("tiny-step5-")
    photo, reference = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded.transfer(photo, reference), model.transfer(photo, reference))
    assert json.loads(meta.to_json())["family"] == "retro"


def _photos():
    rng = np.random.default_rng(0)
    base = [np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((12, 12, 1))) for _ in range(4)]
    return [np.clip(b + rng.normal(0, 6, b.shape), 0, 255).astype(np.uint8) for b in base]


def test_the_retro_gan_learns_a_look_in_each_stage():
    """Overfit check: on a fixed handful of samples, stage 1 cuts the error to the targets and teaches the
    encoder the parameters; stage 2 (adversarial) trains D and keeps the reconstruction."""
    cfg = tiny().with_train(lr_generator=3e-3, warmup_steps=1, batch_size=4)
    torch.manual_seed(0)
    gan = RetroGAN(cfg)
    pool = RetroPool(_photos(), 48, seed=0, rank=0, size=4, refresh=0)
    batch = pool.batch(0, 4)
    start = torch.nn.functional.mse_loss(batch.photo, batch.target).item()
    first = gan.train_step(batch, progress=0.0)
    for _ in range(150):
        losses = gan.train_step(batch, progress=0.3)
    assert losses["stage"] == 1 and losses["loss_mse"] < 0.3 * start, (start, losses)
    assert losses["loss_params"] < 0.5 * first["loss_params"]
    for _ in range(10):
        late = gan.train_step(batch, progress=0.9)
    assert late["stage"] == 2 and "loss_d" in late and late["loss_mse"] < 0.5 * start


def test_the_shipped_encoder_gives_one_look_one_code():
    """Codes of different photos printed with the same look lie closer together than codes of the same
    photos printed with different looks: the code describes the look, not the picture."""
    import skimage.data
    from PIL import Image

    from model.checkpoints import DEFAULT_RETRO_CHECKPOINT
    from model.retro.render import render

    model, meta, _ = load_generator(DEFAULT_RETRO_CHECKPOINT)
    assert meta.family == "retro"
    photos = [
        torch.from_numpy(
            np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((160, 120)))
        )
        .permute(2, 0, 1)
        .float()
        / 255
        for name in ("astronaut", "chelsea", "coffee", "rocket")
    ]
    looks = [
        ERAS["1860s-albumen"],
        ERAS["1930s-silver-gelatin"],
        ERAS["1970s-faded-colour"],
        ERAS["1980s-instant"],
    ]
    with torch.no_grad():
        codes = torch.stack(
            [torch.cat([model.encoder(render(p, look)[None] * 2 - 1).code for p in photos]) for look in looks]
        )  # (look, photo, code)
    distance = torch.cdist(codes.flatten(0, 1), codes.flatten(0, 1)).view(4, 4, 4, 4)
    same_look = [distance[a, i, a, j] for a in range(4) for i in range(4) for j in range(4) if i != j]
    other_look = [distance[a, i, b, i] for a in range(4) for b in range(4) if a != b for i in range(4)]
    same, other = torch.stack(same_look).mean(), torch.stack(other_look).mean()
    assert same < MARGIN * other, (float(same), float(other))


MARGIN = 0.6  # the shipped model measured 0.45 (mean distances 0.65 within a look, 1.45 across looks)
