"""`python -m app`: the command line (`app/cli/`)."""

from __future__ import annotations

import sys

# Ctrl+C prints no traceback, whenever it comes: while the gateway loads (so the command line
# is imported here, inside the handler), or once the server has drained and uvicorn raises
# the signal again.
INTERRUPTED = 130


def main() -> int:
    try:
        from app.cli import run_command

        return run_command(sys.argv[1:])
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
