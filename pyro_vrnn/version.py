"""The package version (one place, so that modules below the package root can record it)."""

__version__ = "0.1.0"
