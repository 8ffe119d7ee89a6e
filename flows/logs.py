"""The logger of the flows' steps: the run's logger inside a flow or task, a plain one outside.

Prefect's ``get_run_logger`` ships lines to the run's log in the UI but raises outside a run.
The train flow's steps are plain functions that tests (and people) call directly too, so they
log through :func:`run_logger`, which falls back to the ``landcover.flows`` logger there.
"""

from __future__ import annotations

import logging
from typing import Any

FALLBACK_LOGGER = "landcover.flows"


def run_logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The current flow or task run's logger, else ``landcover.flows``."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(FALLBACK_LOGGER)
