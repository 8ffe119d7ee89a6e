"""Bad input as a value: batch jobs route it to a dead-letter output instead of crashing.

Every stage reports a bad scene the same way (its URI, a one-line reason, the stage), so
``errors/`` files from preprocess and predict read alike and counts reconcile:
scenes in = scenes written + scenes in errors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# Every batch job's dead-letter folder, under its output: <output>/errors/*.jsonl.
ERRORS_DIR = "errors"


class BadInputError(Exception):
    """A scene or file that cannot be used, with the URI a person needs to find it."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = " ".join(str(reason).split())  # one line, always
        super().__init__(f"{uri}: {self.reason}")


@dataclass(frozen=True)
class ErrorRecord:
    """One line of a dead-letter file."""

    uri: str
    reason: str
    stage: str
    scene_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_error(cls, error: BadInputError, stage: str, scene_id: str = "") -> ErrorRecord:
        return cls(uri=error.uri, reason=error.reason, stage=stage, scene_id=scene_id)
