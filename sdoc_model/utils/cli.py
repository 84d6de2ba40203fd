"""One way for every command line to report bad input: `error: <message>` and exit status 1.

The project's errors say what is wrong and where (the file, row or key); they are ValueError or
OSError subclasses (SchemaError, ChecksumError, BaseModelError, MissingInputError, ...), so a
traceback would add nothing but noise. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

REPORTED_ERRORS = (ValueError, OSError)


def exit_on_error(main: Callable) -> Callable:
    """Wrap a command's `main(argv)`: a reported error prints one line to stderr and exits 1."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except REPORTED_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return run
