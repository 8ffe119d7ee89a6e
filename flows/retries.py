"""Which failures are worth retrying, and the retry policy every I/O task uses.

Retrying is right for failures that a later attempt can plausibly not meet: a dropped
connection, a timeout, a 429/5xx from object storage. It is wrong for failures that will repeat
(bad input, a wrong argument, a missing file or bucket, a permission error): those fail the task
at once with the original error, instead of after minutes of backoff.

Transient:
- ``ConnectionError`` and ``TimeoutError`` (both ``OSError``), and any other ``OSError`` except
  the "this path is wrong" family (``FileNotFoundError``, ``PermissionError``,
  ``IsADirectoryError``, ``NotADirectoryError``, ``FileExistsError``);
- Google API errors that Google's own retry helper calls transient
  (``google.api_core.retry.if_transient_error``: 429, 500, 502, 503, auth transport errors,
  dropped connections) plus ``DeadlineExceeded`` and ``GatewayTimeout``;
- Beam's ``BeamIOError`` when any error it wraps is transient by these rules.

Not transient: ``BadInputError``, ``ValueError``, ``TypeError``, ``KeyError``, Google's 4xx
(``NotFound``, ``Forbidden``, ``BadRequest``…), and everything else.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

RETRIES = 3
BACKOFF_FACTOR = 2.0  # seconds: delays 2, 4, 8 (+ jitter)
JITTER = 0.5
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)


def _google_transient(exc: BaseException) -> bool:
    try:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import if_transient_error
    except ImportError:  # pragma: no cover - google-api-core is a dependency
        return False
    if isinstance(exc, gexc.DeadlineExceeded | gexc.GatewayTimeout):
        return True
    return isinstance(exc, Exception) and bool(if_transient_error(exc))


def is_transient(exc: BaseException | None) -> bool:
    """True when retrying ``exc`` can help (see the module docstring for the rules)."""
    if exc is None:
        return False
    from apache_beam.io.filesystem import BeamIOError

    from pipelines.core.errors import BadInputError

    if isinstance(exc, BadInputError):
        return False
    if isinstance(exc, BeamIOError):
        details = getattr(exc, "exception_details", None) or {}
        inner = [e for e in details.values() if isinstance(e, BaseException)]
        if inner:
            return any(is_transient(e) for e in inner)
        return is_transient(exc.__cause__) if exc.__cause__ is not None else True
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return False
    if isinstance(exc, OSError):  # ConnectionError, TimeoutError, socket and I/O errors
        return True
    if _google_transient(exc):
        return True
    # A transient cause wrapped in some library's own exception type still counts.
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is transient."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            result = state.result(raise_on_failure=False)
        except Exception as error:  # a result that cannot be loaded: look at that error
            result = error
        exc = result if isinstance(result, BaseException) else None
    return is_transient(exc)


def storage_retry_options(retries: int = RETRIES) -> dict[str, Any]:
    """``@task(**storage_retry_options())``: exponential backoff, transient errors only."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_FACTOR),
        "retry_jitter_factor": JITTER,
        "retry_condition_fn": retry_on_transient,
    }
