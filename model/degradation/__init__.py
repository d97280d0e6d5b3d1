"""The synthetic old-photo degradation engine, shared by every model family.

- ``engine``: plans (``sample_plan``) and their deterministic application (``apply_plan``), presets by
  severity; ``aging``, ``defects``, ``artifacts``: the ops a plan names.
- ``mixture``: the blind mixture the default restoration model trains on.
- ``published``: an independent implementation of the published Bringing-Old-Photos-Back-to-Life recipe,
  used only to validate models trained on the engine (it imports nothing from it).
"""

from model.degradation.engine import (
    PRESETS,
    DegradationPlan,
    apply_plan,
    degrade,
    degrade_image,
    image_to_tensor,
    sample_plan,
    tensor_to_image,
)

__all__ = [
    "PRESETS",
    "DegradationPlan",
    "apply_plan",
    "degrade",
    "degrade_image",
    "image_to_tensor",
    "sample_plan",
    "tensor_to_image",
]
