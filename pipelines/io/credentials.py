"""Cloud credentials, checked up front: a missing login fails in seconds with one clear line.

Kept apart from :mod:`pipelines.io.storage` (which imports Beam) so the ``landcover`` command
can check its ``gs://`` arguments before it imports any stage. Only messages leave this
module, never a credential: the error names the bucket and how to log in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

# Finding credentials may ask the GCE metadata server (3 s timeouts, retried) when nothing
# else is configured; past this the answer is "none" for our purposes.
CREDENTIALS_TIMEOUT_S = 10.0
HOW_TO_AUTHENTICATE = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file (on GCE, GKE, Cloud Run and Dataflow the attached service "
    "account is used); for a local GCS emulator set STORAGE_EMULATOR_HOST"
)


class MissingCredentialsError(RuntimeError):
    """A ``gs://`` URI with no usable Google Cloud credentials; the message says how to fix it."""


_checked_credentials: set[str] = set()


def _find_credentials() -> None:
    import google.auth

    google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])


def check_credentials(uri: str) -> None:
    """Raise :class:`MissingCredentialsError` (one line, within seconds) if ``uri`` needs
    Google Cloud credentials that cannot be found; a no-op for local paths and emulators.

    Without this, the first ``gs://`` access retries for minutes and ends in pages of
    tracebacks. The message names the URI and how to provide credentials, never a secret.
    """
    if not uri.startswith("gs://") or os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    key = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    if key in _checked_credentials:
        return
    import concurrent.futures

    from google.auth.exceptions import DefaultCredentialsError

    bucket = uri[len("gs://") :].split("/", 1)[0]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(_find_credentials).result(timeout=CREDENTIALS_TIMEOUT_S)
    except (DefaultCredentialsError, concurrent.futures.TimeoutError) as error:
        cause = "none found" if not key else "GOOGLE_APPLICATION_CREDENTIALS is not usable"
        raise MissingCredentialsError(
            f"no Google Cloud credentials for gs://{bucket}/ ({cause}): {HOW_TO_AUTHENTICATE}"
        ) from error
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    _checked_credentials.add(key)


def gs_uris(args: Iterable[str]) -> list[str]:
    """The ``gs://`` URIs among command-line arguments (``--flag=gs://…`` included)."""
    found = []
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value.startswith("gs://"):
            found.append(value)
    return found
