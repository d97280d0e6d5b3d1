"""Model size and cost: parameters and GFLOPs per megapixel, counted by torch's FlopCounterMode."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from model.discriminator import Discriminator
from model.restoration.config import RestorationConfig
from model.restoration.generator import Generator

_PROBE = 256  # probe side in pixels; both nets are fully convolutional so cost is linear in pixels


@dataclass(frozen=True)
class NetInfo:
    name: str
    parameters: int
    gflops_per_megapixel: float  # one multiply-add counts as 2 FLOPs


def describe(cfg: RestorationConfig) -> list[NetInfo]:
    generator, discriminator = Generator(cfg.generator), Discriminator(cfg.discriminator)
    probe = torch.zeros(1, 3, _PROBE, _PROBE)
    return [
        NetInfo("generator", _count(generator), _gflops_per_mp(lambda: generator(probe))),
        NetInfo("discriminator", _count(discriminator), _gflops_per_mp(lambda: discriminator(probe, probe))),
    ]


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def _gflops_per_mp(forward) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        forward()
    return counter.get_total_flops() / 1e9 * (1e6 / (_PROBE * _PROBE))
