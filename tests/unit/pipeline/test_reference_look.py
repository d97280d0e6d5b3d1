"""A reference-look job gives each photo the look of its reference, read once from the reference: two
references give two different outputs, each the one that reference's look makes."""

import numpy as np
import torch
from PIL import Image
from stage_batches import manifest

from model.retro.generator import stylize
from pipeline.batch.stages import decode, fetch, image_at
from pipeline.batch.stylizer import ReferenceStylizer, load_retro, read_look, read_reference
from pipeline.storage import Storage


def test_two_references_give_two_looks_each_its_own(tmp_path, photo, conditioned_retro_checkpoint):
    storage = Storage()
    photo.save(tmp_path / "content.png")
    references = {}
    for name, colour in (("sepia", (112, 66, 20)), ("cyan", (20, 110, 140))):
        gradient = np.linspace(0.3, 1.0, 64)[None, :, None] * np.array(colour)[None, None]
        references[name] = str(tmp_path / f"{name}.png")
        Image.fromarray(np.repeat(gradient, 64, axis=0).astype(np.uint8)).save(references[name])
    decoded = decode(fetch(manifest([str(tmp_path / "content.png")]), storage), 10**6)
    generator = load_retro(str(conditioned_retro_checkpoint), storage)[0]
    outputs = {}
    for name, reference in references.items():
        stylizer = ReferenceStylizer(str(conditioned_retro_checkpoint), reference, device="cpu")
        outputs[name] = image_at(stylizer(decoded), 0, "restored")
        # What this reference's look makes of the photo, computed directly from the model.
        look = read_look(generator, read_reference(reference, storage)[0])
        x = torch.from_numpy(np.asarray(photo)).permute(2, 0, 1)[None].float().div(255) * 2 - 1
        with torch.no_grad():
            own = ((stylize(generator, x, look)[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
        assert np.abs(outputs[name].astype(float) - own * 255).max() <= 2, name
    assert np.abs(outputs["sepia"].astype(float) - outputs["cyan"].astype(float)).mean() > 2.0
