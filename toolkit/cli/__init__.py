"""``endpoints``: the command line, nouns and verbs after ``az ml`` (DESIGN.md section 4).

A thin client of the SDK: each noun has a module (``host``, ``models``, ``online_endpoint``,
``online_deployment``, ``batch_endpoint``, ``batch_deployment``, ``job``, ``advise``) that reads
flags, calls ``toolkit.Workspace`` and prints with ``output``; rules a UI would also need
(create never replaces, ``update --set``, the ``advise --apply`` plan) live in the SDK.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or an invalid spec (the field is named).
Every read command takes ``-o json``.
"""

from __future__ import annotations

from .run import main
from .parser import build_parser

__all__ = ["main", "build_parser"]
