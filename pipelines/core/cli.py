"""What the answer commands share: the ``--gsd`` flag for maps without a CRS, and their ending.

``landcover stats``, ``vectorize``, ``change`` and ``predict`` end the same way: the run's
summary as JSON on stdout and exit 0, or one line ``landcover <cmd>: error: <cause>`` on stderr
and exit 2 for bad input (a ``ValueError`` or ``FileNotFoundError`` naming the file), the
argparse convention, so a script can tell a bad input from a crash (exit 1, traceback). Pure
standard library: parsing stays light, ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

USAGE_ERROR = 2  # argparse's exit status for a usage error; bad input is reported the same way


def _number(text: str, ok: Callable[[float], bool], expected: str) -> float:
    """``text`` as a float that ``ok`` accepts, else an argparse error naming ``expected``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a positive, finite number."""
    return _number(text, lambda v: 0 < v < math.inf, "a positive number")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, lambda v: 0 <= v < math.inf, "a number >= 0")


def add_map_gsd(parser: argparse.ArgumentParser) -> None:
    """``--gsd``: metres per pixel of maps that carry no CRS (a CRS's own units always win)."""
    parser.add_argument(
        "--gsd",
        type=positive_float,
        default=None,
        help=(
            "metres per pixel for maps without a CRS (DeepGlobe PNG masks: 0.5 unless this "
            "says otherwise); a CRS's own units always win"
        ),
    )


def print_error(prog: str, error: BaseException, status: int = USAGE_ERROR) -> int:
    """``prog: error: cause`` on stderr (the one error line of every command); returns
    ``status``, the exit status the command gives for it (2 unless it documents another)."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return status


def print_summary(prog: str, run: Callable[[], dict[str, Any]]) -> int:
    """Call ``run``; print its summary as JSON (0) or ``prog: error: cause`` on stderr (2)."""
    try:
        summary = run()
    except (ValueError, FileNotFoundError) as error:
        return print_error(prog, error)
    print(json.dumps(summary, indent=2))
    return 0
