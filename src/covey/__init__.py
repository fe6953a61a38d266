"""covey: run many AI coding agents at once on one repository."""

__version__ = "0.1.0"
__all__ = ["__version__"]
