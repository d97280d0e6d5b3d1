import pytest
import torch

from model.losses import AdversarialLoss, DefectMaskLoss, FeatureMatchingLoss, ReconstructionLoss


def _outputs(value: float, scales: int = 2):
    return [(torch.full((1, 1, 4, 4), value), [torch.full((1, 2, 4, 4), value)]) for _ in range(scales)]


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="unknown GAN mode"):
        AdversarialLoss("wgan-typo")


@pytest.mark.parametrize(
    ("mode", "value", "real", "for_d", "expected"),
    [
        ("hinge", 2.0, True, True, 0.0),  # confident real: no loss
        ("hinge", 0.0, True, True, 1.0),
        ("hinge", 0.0, False, True, 1.0),
        ("hinge", -3.0, False, True, 0.0),
        ("hinge", 0.5, True, False, -0.5),  # G maximises D's logit on fakes
        ("lsgan", 1.0, True, True, 0.0),
        ("lsgan", 0.0, True, False, 1.0),
        ("lsgan", 0.5, False, True, 0.25),
    ],
)
def test_adversarial_values(mode, value, real, for_d, expected):
    loss = AdversarialLoss(mode)(_outputs(value), real=real, for_discriminator=for_d)
    assert loss.item() == pytest.approx(expected)


def test_feature_matching_zero_when_equal_and_gradient_only_to_fake():
    fake = [(torch.zeros(1), [torch.ones(1, 2, 4, 4, requires_grad=True)])]
    real = [(torch.zeros(1), [torch.ones(1, 2, 4, 4, requires_grad=True)])]
    assert FeatureMatchingLoss()(fake, real).item() == 0
    real = [(torch.zeros(1), [torch.zeros(1, 2, 4, 4, requires_grad=True)])]
    FeatureMatchingLoss()(fake, real).backward()
    assert fake[0][1][0].grad is not None and real[0][1][0].grad is None


def test_mask_loss_prefers_correct_logits_and_weights_defects():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:4] = 1
    good = DefectMaskLoss()(mask * 20 - 10, mask)
    bad = DefectMaskLoss()(10 - mask * 20, mask)
    assert good < 1e-3 < bad
    missed = torch.full_like(mask, -10.0)  # predicts no defect anywhere
    assert DefectMaskLoss(pos_weight=4.0)(missed, mask) > DefectMaskLoss(1.0)(missed, mask)


def test_reconstruction_is_charbonnier():
    # L1 away from zero, smooth (and eps, not 0) at zero.
    assert ReconstructionLoss()(torch.zeros(2, 3), torch.full((2, 3), 0.5)).item() == pytest.approx(
        0.5, abs=1e-5
    )
    assert ReconstructionLoss(eps=1e-3)(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(1e-3)


def test_losses_ignore_the_pixels_not_judged():
    # Real-photo pairs (pipeline/training/data.PairPool): a wrong prediction outside ``judged`` costs nothing.
    from model.restoration.gan import defect_weight

    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2, 2] = 1
    judged = torch.zeros(1, 1, 8, 8)
    judged[..., :4, :4] = 1
    loss = DefectMaskLoss(2.0)
    right = torch.where(mask > 0, 5.0, -5.0)
    wrong_outside = right.clone()
    wrong_outside[..., 6:, 6:] = 5.0  # flags pixels no one labelled
    assert loss(wrong_outside, mask, judged) == pytest.approx(loss(right, mask, judged).item())
    assert loss(wrong_outside, mask) > loss(right, mask)
    weight = defect_weight(mask, 9.0, judged)
    assert float(weight[..., 4:, :].abs().sum()) == 0 and weight.mean().item() == pytest.approx(1.0)
