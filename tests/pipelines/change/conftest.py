"""The change job's tests share the answers' class-map writer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "answers_conftest", Path(__file__).parents[1] / "answers" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
write_map = _module.write_map
