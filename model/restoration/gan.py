"""Two-stage restoration GAN training, one step at a time, callable without Ray (Ray Train wraps the same
step).

Stage 1, reconstruction (PSNR-oriented, the ESRGAN / Real-ESRGAN practice):
  L_G = w_rec * Charbonnier(restored, clean) + w_mse * MSE(restored, clean) + w_mask * BCE(mask_logits, mask)
Stage 2, adversarial fine-tune from stage 1, once ``progress >= train.gan_start``:
  D:  L_D = adv(D(clean | degraded), real) + adv(D(restored.detach() | degraded), fake)
  G:  L_G = stage 1 terms + w_adv * adv(D(restored | degraded)) + w_fm * FM(D(restored), D(clean))
``progress`` is the fraction of the run's budget done (steps, or training wall time): the stage switch and
the learning rates (warm-up, then cosine decay within each stage) follow the budget, however it is given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from model.discriminator import Discriminator
from model.losses import AdversarialLoss, DefectMaskLoss, FeatureMatchingLoss, ReconstructionLoss
from model.restoration.config import RestorationConfig
from model.restoration.generator import Generator


@dataclass
class Batch:
    """Training batch, all (B, C, H, W) on one device: degraded/clean RGB in [-1, 1], mask in {0, 1}."""

    degraded: torch.Tensor
    clean: torch.Tensor
    defect_mask: torch.Tensor


def stage_of(progress: float, gan_start: float) -> int:
    """1 (reconstruction) before ``gan_start`` of the budget, 2 (adversarial) from there on."""
    return 1 if progress < gan_start else 2


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
        self.autocast_dtype = autocast_dtype
        # channels_last: oneDNN and cuDNN run 3x3 convolutions fastest in NHWC (1.7x on the CPU box in bf16).
        generator = Generator(cfg.generator).to(self.device, memory_format=torch.channels_last)
        discriminator = Discriminator(cfg.discriminator).to(self.device, memory_format=torch.channels_last)
        self.ema = copy.deepcopy(generator).eval().requires_grad_(False)
        wrap = wrap or (lambda m: m)
        self.generator, self.discriminator = wrap(generator), wrap(discriminator)
        train = cfg.train
        self.opt_g = torch.optim.AdamW(
            generator.parameters(), lr=train.lr_generator, betas=train.betas, weight_decay=train.weight_decay
        )
        self.opt_d = torch.optim.AdamW(
            discriminator.parameters(), lr=train.lr_discriminator, betas=(0.5, 0.99), weight_decay=0.0
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

    def learning_rates(self, progress: float) -> tuple[float, float]:
        """(G lr, D lr) at ``progress``: linear warm-up over the first steps, cosine decay to
        ``lr_min_fraction`` within each stage; stage 2 restarts from its own, lower peak."""
        t = self.cfg.train
        if stage_of(progress, t.gan_start) == 1:
            within = progress / t.gan_start if t.gan_start > 0 else 1.0
            warm = min(1.0, (self.step + 1) / max(t.warmup_steps, 1))
            return t.lr_generator * warm * _cosine(within, t.lr_min_fraction), 0.0
        within = (progress - t.gan_start) / max(1.0 - t.gan_start, 1e-9)
        decay = _cosine(within, t.lr_min_fraction)
        return t.lr_gan_generator * decay, t.lr_discriminator * decay

    def train_step(self, batch: Batch, progress: float | None = None) -> dict[str, float]:
        """One step of the stage ``progress`` (default: step / steps) falls in. Returns the loss terms."""
        t = self.cfg.train
        progress = self.step / t.steps if progress is None else progress
        stage = stage_of(progress, t.gan_start)
        lr_g, lr_d = self.learning_rates(progress)
        _set_lr(self.opt_g, lr_g)
        _set_lr(self.opt_d, lr_d)
        w = t.losses
        degraded = batch.degraded.contiguous(memory_format=torch.channels_last)
        self.generator.train()
        with self._autocast():
            restored, mask_logits = self.generator(degraded)
        losses: dict[str, float] = {"stage": float(stage), "lr_g": lr_g}

        if stage == 2:  # Discriminator: real pairs vs detached fakes.
            self.discriminator.train()
            with self._autocast():
                d_real = self.discriminator(batch.clean, batch.degraded)
                d_fake = self.discriminator(restored.detach(), batch.degraded)
                loss_d = self.adversarial(d_real, real=True, for_discriminator=True) + self.adversarial(
                    d_fake, real=False, for_discriminator=True
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            nn.utils.clip_grad_norm_(self.discriminator.parameters(), t.grad_clip)
            self.opt_d.step()
            losses["loss_d"] = loss_d.item()

        loss_rec = self.reconstruction(restored.float(), batch.clean)
        loss_mse = F.mse_loss(restored.float(), batch.clean)
        loss_mask = self.mask_loss(mask_logits.float(), batch.defect_mask)
        loss_g = w.reconstruction * loss_rec + w.mse * loss_mse + w.defect_mask * loss_mask
        if stage == 2:  # Generator: also fool the updated D and match its features.
            with self._autocast():
                d_fake = self.discriminator(restored, batch.degraded)
                with torch.no_grad():
                    d_real = self.discriminator(batch.clean, batch.degraded)
                loss_adv = self.adversarial(d_fake, real=True, for_discriminator=False)
                loss_fm = self.feature_matching(d_fake, d_real)
            loss_g = loss_g + w.adversarial * loss_adv.float() + w.feature_matching * loss_fm.float()
            losses.update(loss_adv=loss_adv.item(), loss_fm=loss_fm.item())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        nn.utils.clip_grad_norm_(self.generator.parameters(), t.grad_clip)
        self.opt_g.step()
        self._update_ema()
        self.step += 1
        losses.update(
            loss_g=loss_g.item(),
            loss_rec=loss_rec.item(),
            loss_mse=loss_mse.item(),
            loss_mask=loss_mask.item(),
        )
        return losses

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


def _cosine(fraction: float, floor: float) -> float:
    fraction = min(max(fraction, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * fraction))


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
