import pytest
import torch

from model.discriminator import Discriminator
from model.restoration.config import DiscriminatorConfig, tiny


def test_multiscale_outputs_and_features():
    cfg = tiny().discriminator
    disc = Discriminator(cfg)
    outputs = disc(torch.rand(2, 3, 97, 131), torch.rand(2, 3, 97, 131))
    assert len(outputs) == cfg.num_scales
    sizes = [logits.shape[-1] for logits, _ in outputs]
    assert sizes == sorted(sizes, reverse=True)  # finest scale first
    for logits, features in outputs:
        assert logits.shape[:2] == (2, 1)
        assert len(features) == cfg.num_layers + 1


def test_no_batchnorm_and_spectral_norm_everywhere():
    disc = Discriminator(DiscriminatorConfig())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs)


def test_conditional_needs_degraded():
    with pytest.raises(ValueError, match="degraded"):
        Discriminator(tiny().discriminator)(torch.rand(1, 3, 32, 32))


def test_two_forwards_then_one_backward():
    # The pattern the GAN step uses (real and fake through D, then one backward) must work.
    disc = Discriminator(tiny().discriminator)
    cond = torch.rand(2, 3, 32, 32)
    real = disc(torch.rand(2, 3, 32, 32), cond)
    fake = disc(torch.rand(2, 3, 32, 32), cond)
    loss = sum(o[0].mean() for o in real) - sum(o[0].mean() for o in fake)
    loss.backward()
    assert all(p.grad is not None for p in disc.parameters())
