"""``python -m toolkit.host``: run the host in this process (what ``endpoints up`` detaches)."""

from __future__ import annotations

import argparse
import sys

from ..home import Home
from .daemon import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m toolkit.host")
    p.add_argument("--home", default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--foreground", action="store_true")
    a = p.parse_args(argv)
    return serve(Home.resolve(a.home), a.host, a.port, foreground=a.foreground)


if __name__ == "__main__":
    sys.exit(main())
