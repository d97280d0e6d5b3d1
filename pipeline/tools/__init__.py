"""Tools for people looking at results: folder tools, galleries, the demo."""
