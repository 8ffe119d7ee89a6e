"""The harmless-warning filter drops the named message at its logger and keeps every other."""

from __future__ import annotations

import logging
import warnings

from pipelines.core.quiet import DropMessages, quiet_harmless


def test_beams_no_shards_warning_is_dropped_and_other_warnings_of_its_logger_kept(caplog):
    quiet_harmless()
    quiet_harmless()  # idempotent: one filter
    logger = logging.getLogger("apache_beam.io.filebasedsink")
    assert sum(isinstance(f, DropMessages) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("No shards found to finalize. num_shards: %d, skipped: %d", 1, 0)
        logger.warning("Deleting %d existing files in target path matching: %s", 3, "x-*")
        logging.getLogger("apache_beam.io.gcsio").warning(
            "No shards found to finalize. num_shards: %d, skipped: %d", 1, 0
        )  # the same text from another logger is not the message the filter names
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Deleting 3 existing files in target path matching: x-*",
        "No shards found to finalize. num_shards: 1, skipped: 0",
    ]


def test_the_google_python_version_notice_is_ignored_and_other_future_warnings_kept():
    quiet_harmless()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_harmless()  # inside the block: catch_warnings restored the filters on entry
        warnings.warn(
            "You are using a Python version (3.11.7) which Google will stop supporting",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("a real deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real deprecation"]
