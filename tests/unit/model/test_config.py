import json

import pytest

from model.restoration.config import PRESETS, RestorationConfig, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    cfg = preset(name)
    assert RestorationConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    data = preset("tiny").to_dict()
    data["generator"]["num_heads"] = 4
    with pytest.raises(ValueError, match="num_heads"):
        RestorationConfig.from_dict(data)


def test_frozen():
    with pytest.raises(AttributeError):
        preset("small").generator.widths = (3,)


def test_with_train_overrides_only_what_is_given():
    from model.restoration.config import small

    cfg = small().with_train(steps=7, crop=None, lr_generator=3e-4)
    assert (cfg.train.steps, cfg.train.lr_generator) == (7, 3e-4)
    assert cfg.train.crop == small().train.crop and cfg.generator == small().generator


def test_bad_values_are_one_line_errors():
    from model.restoration.config import GeneratorConfig, TrainConfig

    with pytest.raises(ValueError, match="one block count per level"):
        GeneratorConfig(widths=(8, 16, 32), blocks=(1,))
    with pytest.raises(ValueError, match="gan_start"):
        TrainConfig(gan_start=1.5)
    with pytest.raises(ValueError, match="time budget"):
        TrainConfig(time_budget_s=0)
