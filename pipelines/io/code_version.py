"""Which code produced an output: ``git describe`` of the checkout, else the package version.

Training metadata, the provenance tags inside predicted COGs and STAC Items all name it, so it
is computed in one place. A Dataflow worker has no git checkout and reports the installed
package version instead. Cached: it is asked once per scene, and the answer cannot change while
a process runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git:<describe>`` of the checkout this code runs from, else ``landcover==<version>``."""
    here = os.path.dirname(os.path.abspath(__file__))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return f"git:{result.stdout.strip()}"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"landcover=={version('landcover')}"
    except PackageNotFoundError:
        return "unknown"
