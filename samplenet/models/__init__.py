"""samplenet's models (one per module) and the preset registry."""
from samplenet.models.registry import build_model, preset_names

__all__ = ["build_model", "preset_names"]
