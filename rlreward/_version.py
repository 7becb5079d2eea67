"""The package version, on the ground floor so any layer can record it without importing
``rlreward`` (the public API above everything)."""

__version__ = "0.1.0"
