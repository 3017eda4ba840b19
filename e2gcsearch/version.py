"""The package version, in one place (the package root and every stored record read it from here)."""

__version__ = "0.1.0"
