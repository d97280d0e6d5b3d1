"""Which model a run uses, read once when the run is planned: the id every result row records, and the
description ``results.parquet``'s metadata carries. Reading it validates the model (and the reference) before
any work: a bad checkpoint, era name or reference, or a model of the wrong family, is one clear error, not N
failed rows."""

from __future__ import annotations

from model.checkpoints import decode_checkpoint, decode_generator
from model.retro.eras import era
from pipeline.batch.stylizer import era_model_id, era_name, read_look, read_reference, reference_model_id
from pipeline.storage import Storage


def identify_model(model: str, storage: Storage, reference: str | None = None) -> tuple[str, dict]:
    """(model id, description) of ``model``: a restoration checkpoint (its content id), an era preset
    (``era:NAME``: family, era and a digest of its parameters), or a retro checkpoint with ``reference`` (the
    checkpoint's id with the reference's digest, and the renderer parameters its encoder reads from the
    reference, as the actors read them). The checkpoint and the reference are each read once."""
    name = era_name(model)
    if name is not None:
        if reference is not None:
            raise ValueError("an era preset takes no reference: give --era or --reference, not both")
        model_id = era_model_id(name)
        return model_id, {"family": "retro", "era": name, "model_id": model_id, "params": era(name).to_dict()}
    model_bytes = storage.read_bytes(model)
    meta = decode_checkpoint(model_bytes, model)[1]
    if meta.family != "retro":
        if reference is not None:
            raise ValueError(f"{model}: a {meta.family} model takes no reference; use a retro model")
        # Built once here, so weights that do not fit their config, or are not finite, stop the run before
        # any work instead of failing every row.
        _, _, model_id = decode_generator(model_bytes, model)
        return model_id, {"family": meta.family, "model": model, "model_id": model_id}
    if reference is None:
        raise ValueError(
            f"{model}: a retro model gives photos the look of a reference photo (stylize --reference)"
        )
    generator, _, retro_id = decode_generator(model_bytes, model)
    image, digest = read_reference(reference, storage)
    model_id = reference_model_id(retro_id, digest)
    return model_id, {
        "family": "retro",
        "model": model,
        "model_id": model_id,
        "reference": reference,
        "reference_sha256": digest,
        "params": read_look(generator, image).to_params().to_dict(),
    }
