"""The package version (its own module so the protocol core can read it
without importing the package root, which imports the fronts)."""

__version__ = "0.1.0"
