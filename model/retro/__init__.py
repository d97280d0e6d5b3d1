"""The retro family: modern photos taken back in time (docs/RETRO.md)."""
