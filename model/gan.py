"""One conditional-GAN training step, callable without Ray (Ray Train wraps the same step).

Per step (pix2pixHD recipe with a defect-mask head):
  D:  L_D = adv(D(clean | degraded), real) + adv(D(restored.detach() | degraded), fake)
  G:  L_G = w_adv * adv(D(restored | degraded)) + w_l1 * |restored - clean|_1
            + w_fm * FM(D(restored), D(clean)) + w_mask * BCE(mask_logits, defect_mask)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from model.config import RestorationConfig
from model.discriminator import Discriminator
from model.generator import Generator
from model.losses import AdversarialLoss, DefectMaskLoss, FeatureMatchingLoss, ReconstructionLoss


@dataclass
class Batch:
    """Training batch, all (B, C, H, W) on one device: degraded/clean RGB in [-1, 1], mask in {0, 1}."""

    degraded: torch.Tensor
    clean: torch.Tensor
    defect_mask: torch.Tensor
    task: torch.Tensor | int = 0


class RestorationGAN:
    """Holds G, D, an EMA copy of G, their optimizers and the losses. ``wrap`` lets a caller (Ray Train)
    wrap G and D for DDP without this class knowing about it."""

    def __init__(
        self,
        cfg: RestorationConfig,
        device: str | torch.device = "cpu",
        wrap: Callable[[nn.Module], nn.Module] | None = None,
        autocast_dtype: torch.dtype | None = None,
    ):
        self.cfg = cfg
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype  # bf16 on GPU; None = full precision
        generator = Generator(cfg.generator).to(self.device)
        discriminator = Discriminator(cfg.discriminator).to(self.device)
        self.ema = copy.deepcopy(generator).eval().requires_grad_(False)
        wrap = wrap or (lambda m: m)
        self.generator, self.discriminator = wrap(generator), wrap(discriminator)
        train = cfg.train
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=train.lr_generator, betas=train.betas)
        self.opt_d = torch.optim.Adam(
            discriminator.parameters(), lr=train.lr_discriminator, betas=train.betas
        )
        w = train.losses
        self.adversarial = AdversarialLoss(w.gan_mode)
        self.feature_matching = FeatureMatchingLoss()
        self.reconstruction = ReconstructionLoss()
        self.mask_loss = DefectMaskLoss(w.mask_pos_weight).to(self.device)
        self.step = 0

    @property
    def unwrapped_generator(self) -> Generator:
        return getattr(self.generator, "module", self.generator)

    @property
    def unwrapped_discriminator(self) -> Discriminator:
        return getattr(self.discriminator, "module", self.discriminator)

    def _autocast(self):
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One D update then one G update. Returns the loss terms as floats."""
        w = self.cfg.train.losses
        self.generator.train()
        self.discriminator.train()
        with self._autocast():
            restored, mask_logits = self.generator(batch.degraded, batch.task)

        # Discriminator: real pairs vs detached fakes.
        with self._autocast():
            d_real = self.discriminator(batch.clean, batch.degraded)
            d_fake = self.discriminator(restored.detach(), batch.degraded)
            loss_d = self.adversarial(d_real, real=True, for_discriminator=True) + self.adversarial(
                d_fake, real=False, for_discriminator=True
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.cfg.train.grad_clip)
        self.opt_d.step()

        # Generator: fool the updated D, match its features, stay close to clean, find the defects.
        with self._autocast():
            d_fake = self.discriminator(restored, batch.degraded)
            with torch.no_grad():
                d_real = self.discriminator(batch.clean, batch.degraded)
            loss_adv = self.adversarial(d_fake, real=True, for_discriminator=False)
            loss_fm = self.feature_matching(d_fake, d_real)
        loss_l1 = self.reconstruction(restored.float(), batch.clean)
        loss_mask = self.mask_loss(mask_logits.float(), batch.defect_mask)
        loss_g = (
            w.adversarial * loss_adv
            + w.l1 * loss_l1
            + w.feature_matching * loss_fm
            + w.defect_mask * loss_mask
        )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.train.grad_clip)
        self.opt_g.step()
        self._update_ema()
        self.step += 1
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "loss_adv": loss_adv.item(),
            "loss_l1": loss_l1.item(),
            "loss_fm": loss_fm.item(),
            "loss_mask": loss_mask.item(),
        }

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The whole training state as flat tensors (G, D, EMA, both optimizers' moments) plus JSON-able
        extras (step, optimizer hyper-parameters), ready for a safetensors checkpoint: nothing is pickled.
        Tensors are copies: training on afterwards never changes a snapshot already taken."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self._modules().items():
            tensors.update({f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
        extras: dict[str, Any] = {"step": self.step}
        for name, opt in self._optimizers().items():
            state = opt.state_dict()
            for index, moments in state["state"].items():
                for key, value in moments.items():
                    tensors[f"{name}.{index}.{key}"] = torch.as_tensor(value).clone()
            extras[name] = state["param_groups"]
        return tensors, extras

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], extras: dict[str, Any]) -> None:
        """Restore what ``state_tensors`` produced, onto this object's device; strict about every key."""
        for prefix, module in self._modules().items():
            own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            module.load_state_dict(own, strict=True)
        for name, opt in self._optimizers().items():
            moments: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(name + "."):
                    _, index, field = key.split(".", 2)
                    # A copy: Adam updates its moments in place and must not write into the caller's dict.
                    moments.setdefault(int(index), {})[field] = value.clone()
            opt.load_state_dict({"state": moments, "param_groups": extras[name]})
        self.step = int(extras["step"])

    def _modules(self) -> dict[str, nn.Module]:
        return {
            "generator": self.unwrapped_generator,
            "discriminator": self.unwrapped_discriminator,
            "ema": self.ema,
        }

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.cfg.train.ema_decay
        for ema_p, p in zip(self.ema.parameters(), self.unwrapped_generator.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.ema.buffers(), self.unwrapped_generator.buffers(), strict=True):
            ema_b.copy_(b)
