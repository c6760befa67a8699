"""The pointsman command line."""

from pointsman.cli.app import main

__all__ = ["main"]
