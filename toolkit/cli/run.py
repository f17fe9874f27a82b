"""Running a command: parse, dispatch, and turn errors into a message and an exit code.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or an invalid spec (the field is named),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import InvalidInput, InvalidSpec, ToolkitError
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Interrupted
from .parser import build_parser

__all__ = ["main"]


def _for_cli(message: str, args: argparse.Namespace) -> str:
    """A host error in the words of the command line (flags, not HTTP headers)."""
    if "no deployment with traffic" in message:
        name = getattr(args, "name", None) or "E"
        message = message.split(";")[0] + (
            f"; name a deployment with --deployment-name D, or route traffic to one with "
            f'`endpoints online-endpoint update --name {name} --traffic "D=100"`')
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not hasattr(args, "verb"):
        args.verb = args.noun
    try:
        return args.func(args)
    except (InvalidSpec,) as err:
        print(f"error: {err.message}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidInput as err:
        print(f"error: {err.message}", file=sys.stderr)
        return EXIT_USAGE if err.status_code == 400 and "request file" in err.message else EXIT_FAILED
    except Interrupted:  # before ToolkitError: the CLI already said how to pick it up again
        return 130
    except ToolkitError as err:
        print(f"error: {_for_cli(err.message, args)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `endpoints ... | head` closed the pipe: not an error of ours
        sys.stderr.close()
        return EXIT_OK
