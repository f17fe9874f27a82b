"""The ``endpoints`` argument parser: each noun module adds its sub-commands, in help order."""

from __future__ import annotations

import argparse

from . import advise, batch_deployment, batch_endpoint, host, job, models, online_deployment, online_endpoint
from .help import document

__all__ = ["build_parser"]

# The order of ``endpoints --help``.
_NOUNS = (host, models, online_endpoint, online_deployment, batch_endpoint, batch_deployment, job, advise)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="endpoints", description="Local managed model endpoints: online and batch.")
    sub = parser.add_subparsers(dest="noun", required=True, metavar="COMMAND")
    for noun in _NOUNS:
        noun.register(sub)
    return document(parser)
