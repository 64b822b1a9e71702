"""Data files: default phrasings of the export tasks (``default.json``)."""
