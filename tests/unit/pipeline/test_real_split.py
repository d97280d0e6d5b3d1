"""The real old photos' fixed validation fifth: picked by name, never moved by adding photos, and never read
by a training run that uses the folder as its real domain."""

import numpy as np
from PIL import Image

from pipeline.storage import Storage, StorageOptions
from pipeline.training.data import clean_table
from pipeline.training.real import is_real_validation, real_split


def test_the_validation_fifth_is_fixed_by_name_and_never_trained_on(tmp_path):
    names = [f"print-{i:03d}.jpg" for i in range(60)]
    for name in names[:40]:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)
    train, val = real_split(tmp_path)
    assert 2 <= len(val) <= 16 and len(train) + len(val) == 40
    for name in names[40:]:  # more photos arrive: no photo changes side
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)
    train_after, val_after = real_split(tmp_path)
    assert set(val) <= set(val_after) and set(train) <= set(train_after)
    # The training run's view of the folder (driver._datasets) holds exactly the training split.
    table = clean_table(
        str(tmp_path), Storage(StorageOptions()), keep=lambda uri: not is_real_validation(uri)
    )
    assert sorted(uri.rsplit("/", 1)[-1] for uri in table["uri"].to_pylist()) == [p.name for p in train_after]
    assert table["index"].to_pylist() == list(range(len(train_after)))
