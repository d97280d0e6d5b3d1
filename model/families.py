"""Model families by name. A checkpoint records its ``family``; this map rebuilds its config and generator.

One entry per folder under model/: restoration, and retro (reference-guided style transfer). Unknown
names raise: a checkpoint from a family this patina does not know is refused with the name, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Family:
    config_from_dict: Callable[[dict[str, Any]], Any]  # JSON config -> the family's typed config
    build_generator: Callable[[Any], nn.Module]  # typed config -> untrained generator


def _restoration() -> Family:
    from model.restoration.config import RestorationConfig
    from model.restoration.generator import Generator

    return Family(RestorationConfig.from_dict, lambda cfg: Generator(cfg.generator))


def _retro() -> Family:
    from model.retro.config import RetroConfig
    from model.retro.generator import RetroModel

    return Family(RetroConfig.from_dict, RetroModel)


FAMILIES: dict[str, Callable[[], Family]] = {"restoration": _restoration, "retro": _retro}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]()
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; this patina knows {sorted(FAMILIES)}") from None
