import numpy as np
import pytest
import torch
from PIL import Image

from model.restoration.config import tiny
from model.restoration.generator import Generator
from model.restoration.inference import restore_image, restore_tensor


@pytest.fixture
def generator() -> Generator:
    return Generator(tiny().generator).eval()


@pytest.mark.parametrize("size", [(97, 131), (16, 16), (1, 1), (3, 130), (64, 64)])
def test_any_size_keeps_shape(generator, size):
    x = torch.rand(2, 3, *size) * 2 - 1
    restored, mask_logits = generator(x)
    assert restored.shape == (2, 3, *size)
    assert mask_logits.shape == (2, 1, *size)


def test_untrained_generator_is_identity(generator):
    x = torch.rand(1, 3, 97, 131) * 2 - 1
    restored, _ = generator(x)
    assert torch.equal(restored, x)


def test_batch_items_are_independent(generator):
    # No normalisation over the batch or over space: an image's output never depends on its neighbours.
    for module in generator.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    together, _ = generator(x)
    alone, _ = generator(x[1:])
    assert not torch.allclose(together[1], x[1])  # the weights do reach the output
    torch.testing.assert_close(together[1], alone[0], atol=1e-5, rtol=0)


def test_restore_tensor_range(generator):
    restored, mask = restore_tensor(generator, torch.rand(2, 3, 97, 131))
    assert restored.min() >= 0 and restored.max() <= 1
    assert mask.shape == (2, 1, 97, 131) and mask.min() >= 0 and mask.max() <= 1


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "CMYK", "I;16"])
def test_restore_image_any_mode(generator, photo, mode):
    image = photo.resize((131, 97))
    if mode == "I;16":  # 16-bit grayscale scan
        image = Image.fromarray(np.asarray(image.convert("L")).astype("<u2") * 257)
        assert image.mode == "I;16"
    else:
        image = image.convert(mode)
    restored, mask = restore_image(generator, image)
    assert restored.size == image.size == mask.size == (131, 97)
    assert mask.mode == "L"
    expected = {"L": "L", "I;16": "L", "LA": "LA", "RGBA": "RGBA"}.get(mode, "RGB")
    assert restored.mode == expected
    if mode in ("RGBA", "LA"):
        assert restored.getchannel("A").tobytes() == image.getchannel("A").tobytes()
