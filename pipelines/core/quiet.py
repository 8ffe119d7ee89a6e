"""Harmless warnings dropped where they are logged, by their exact message; all others kept.

Every predict printed Beam's "No shards found to finalize" (the error file sink of a wave in
which no scene failed: ``skip_if_empty`` writes nothing, which is the point); every command
printed google-api-core's notice that Python 3.11 support ends in 2027. Neither says anything
a user can act on, and both train people to skip warnings. A filter sits on the logger that
emits each message and matches the message's format string exactly (its start, for those that
carry counts), so a real warning from the same logger (a failed rename, say) still shows.
TensorFlow's C++ start-up lines (oneDNN, CUDA probing) are not Python logging: the CLIs set
``TF_CPP_MIN_LOG_LEVEL=2`` before TensorFlow loads (``flows.cli``), which keeps its errors.
"""

from __future__ import annotations

import logging
import warnings

# logger name → the format strings (their start) of the harmless messages it logs.
HARMLESS_LOGS: dict[str, tuple[str, ...]] = {
    # filebasedsink.finalize_windowed_write, when a sink had nothing to write.
    "apache_beam.io.filebasedsink": ("No shards found to finalize. num_shards: %d, skipped: %d",),
}
# (message regex, category) of harmless Python warnings.
HARMLESS_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"You are using a Python version \(3\.11", FutureWarning),
)


class DropMessages(logging.Filter):
    """Drops records whose format string starts with one of ``messages``; keeps every other."""

    def __init__(self, messages: tuple[str, ...]) -> None:
        super().__init__()
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.messages))


def quiet_harmless() -> None:
    """Install the filters (idempotent): called by the jobs' entry points before they run."""
    for name, messages in HARMLESS_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(messages))
    for message, category in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
