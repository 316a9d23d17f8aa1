"""The click layer: options → frozen settings → one call into `sprunner.commands`."""

from sprunner.cli.app import main

__all__ = ["main"]
