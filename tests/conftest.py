import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photo (scikit-image's public-domain astronaut), 128x128 RGB."""
    return Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.Resampling.LANCZOS)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)  # only third-party code could depend on it; patina passes generators explicitly
