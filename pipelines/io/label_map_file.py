"""A ``--label-map`` flag's value: ``1:0,2:1,…`` inline, or a JSON file (local or ``gs://``).

One parser for every stage that reads class-id label rasters (preprocess, evaluate), so the
flag means the same everywhere. Light at import: the storage layer (Beam) loads only for a
remote file.
"""

from __future__ import annotations

import argparse
import json

from pipelines.core.palette import LabelMap, check_label_map, parse_label_map


def read_label_map(text: str) -> LabelMap:
    """``1:0,2:1,…`` or a JSON file ``{"1": 0, "2": 1, …}`` → a checked label map.

    Raises ``argparse.ArgumentTypeError`` saying what is wrong (for argparse's ``type=``).
    """
    try:
        if text.lower().endswith(".json"):
            if "://" in text:
                from pipelines.io import storage  # Beam's filesystems: only for a remote file

                raw = storage.read_text(text)
            else:
                with open(text, encoding="utf-8") as handle:
                    raw = handle.read()
            return check_label_map(json.loads(raw))
        return parse_label_map(text)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
