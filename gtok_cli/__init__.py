"""gtok: visual-grounding datasets → spatial-token instruction-tuning data, verified."""

__version__ = "0.1.0"
