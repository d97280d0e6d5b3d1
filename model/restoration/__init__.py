"""The restoration family: a compact half-resolution U-Net generator (``generator``), its configs and
presets (``config``), two-stage GAN training (``gan``), inference (``inference``), the classical baseline it
must beat (``baseline``) and the validation it is judged by (``validation``)."""
