"""Our own import-linter contract types catch what they promise (tests/import_contracts.py).

Each case builds three small packages in a temporary folder, the import graph of them with
grimp (as ``lint-imports`` does), and checks one contract against it.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grimp
import pytest


def load_contracts() -> ModuleType:
    """tests/import_contracts.py, as lint-imports loads it (tests/ is not a package)."""
    path = Path(__file__).with_name("import_contracts.py")
    spec = importlib.util.spec_from_file_location("import_contracts", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_contracts", module)
    spec.loader.exec_module(module)
    return module


import_contracts = load_contracts()
ModuleLevelForbiddenContract = import_contracts.ModuleLevelForbiddenContract
PublicEntryPointsContract = import_contracts.PublicEntryPointsContract

ROOTS = ["lightpkg", "heavypkg", "gluepkg"]
FILES = {
    "heavypkg/__init__.py": "",
    "heavypkg/engine.py": "VALUE = 1\n",
    "lightpkg/__init__.py": "",
    # The light command: its job is imported only to run.
    "lightpkg/cli.py": """
        def main():
            from lightpkg.job import run
            return run()
    """,
    "lightpkg/job.py": "import heavypkg.engine\n\ndef run():\n    return heavypkg.engine.VALUE\n",
    # Module-level import of a module whose heavy imports are lazy or for type checking only.
    "lightpkg/config.py": "from lightpkg import strategy\n",
    "lightpkg/strategy.py": """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import heavypkg.engine
        class Strategy:
            def make(self):
                import heavypkg.engine
                return heavypkg.engine
    """,
    # Eager: the job at module level.
    "lightpkg/eager.py": "from lightpkg.job import run\n",
    # Through a parent package: importing lightpkg.sub.mod runs lightpkg/sub/__init__.py.
    "lightpkg/sub/__init__.py": "try:\n    import heavypkg\nexcept ImportError:\n    pass\n",
    "lightpkg/sub/mod.py": "X = 1\n",
    "lightpkg/via_parent.py": "import lightpkg.sub.mod\n",
    "gluepkg/__init__.py": "",
    "gluepkg/launch.py": "from lightpkg.cli import main\nfrom gluepkg import helpers\n",
    "gluepkg/helpers.py": "",
    "gluepkg/sneaky.py": "from lightpkg.job import run\n",
}


@pytest.fixture
def graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[grimp.ImportGraph]:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path))
    import_contracts.module_file.cache_clear()
    import_contracts.module_level_lines.cache_clear()
    yield grimp.build_graph(*ROOTS, include_external_packages=True, cache_dir=None)
    import_contracts.module_file.cache_clear()
    import_contracts.module_level_lines.cache_clear()


def module_level(sources: list[str]) -> Any:
    return ModuleLevelForbiddenContract(
        "light",
        {"root_packages": ROOTS},
        {"source_modules": sources, "forbidden_modules": ["heavypkg"]},
    )


def test_lazy_and_type_checking_imports_keep_a_module_light(graph: grimp.ImportGraph) -> None:
    check = module_level(["lightpkg.cli", "lightpkg.config", "lightpkg.strategy"]).check(
        graph, verbose=False
    )
    assert check.kept, check.metadata


@pytest.mark.parametrize(
    ("source", "chain"),
    [
        ("lightpkg.eager", ["lightpkg.eager", "lightpkg.job", "heavypkg.engine"]),
        (
            "lightpkg.via_parent",
            ["lightpkg.via_parent", "lightpkg.sub.mod", "lightpkg.sub", "heavypkg"],
        ),
    ],
)
def test_a_module_level_chain_breaks_it_and_is_named(
    graph: grimp.ImportGraph, source: str, chain: list[str]
) -> None:
    check = module_level(["lightpkg.cli", source]).check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["chains"] == [chain]


def test_only_the_listed_entry_points_may_be_imported(graph: grimp.ImportGraph) -> None:
    contract = PublicEntryPointsContract(
        "entry points",
        {"root_packages": ROOTS},
        {"source_modules": ["gluepkg"], "allowed_modules": ["lightpkg.cli"]},
    )
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["imports"] == [("gluepkg.sneaky", "lightpkg.job")]  # helpers: own
