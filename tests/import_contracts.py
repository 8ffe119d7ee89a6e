"""Two import-linter contract types the built-in ones cannot express (``[tool.importlinter]``).

``module_level_forbidden``: importing a source module must not load a forbidden one. Only the
imports that run when a module is imported count: those at module level (inside a top-level
``if``/``try``/``with`` too, and in class bodies), not those inside functions, which is how a
light command imports its job only to run it, and not those under ``if TYPE_CHECKING:``.
Importing ``a.b.c`` also runs ``a`` and ``a.b``'s ``__init__``, so those count as imported.
import-linter's ``forbidden`` type counts every import, lazy ones too, so "``--help`` loads no
TensorFlow" could not be stated with it without listing the lazy imports by hand.

``public_entry_points``: the source modules may import, of the project's own packages, only
the listed modules (and modules of their own package); e.g. the Dataflow launchers use the
stages' command lines, never the jobs or the I/O layer behind them.

Both are loaded by ``lint-imports`` from the repository root (``contract_types`` in
pyproject.toml); ``tests/test_import_contracts.py`` shows each one catching what it should.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import deque
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


@cache
def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (None for external or compiled modules)."""
    top, _, rest = name.partition(".")
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        return None
    base = Path(next(iter(found.submodule_search_locations)), *rest.split(".") if rest else ())
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_lines(body: Iterable[ast.stmt]) -> set[int]:
    """Line numbers of the import statements that run when this block runs at import time."""
    lines: set[int] = set()
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            lines.add(node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue  # runs when called, not when the module is imported
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                lines |= _import_lines(node.body)
            lines |= _import_lines(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                lines |= _import_lines(block)
            for handler in node.handlers:
                lines |= _import_lines(handler.body)
        elif isinstance(node, ast.With | ast.AsyncWith | ast.For | ast.AsyncFor | ast.While):
            lines |= _import_lines(node.body)
            lines |= _import_lines(getattr(node, "orelse", []))
        elif isinstance(node, ast.ClassDef):
            lines |= _import_lines(node.body)  # a class body runs at import
    return lines


@cache
def module_level_lines(name: str) -> frozenset[int]:
    path = module_file(name)
    if path is None:
        return frozenset()
    return frozenset(_import_lines(ast.parse(path.read_text(encoding="utf-8")).body))


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def loaded_by(graph: ImportGraph, importer: str) -> list[str]:
    """The modules that importing ``importer`` imports directly (at module level)."""
    lines = module_level_lines(importer)
    found = [p for p in _parents(importer) if p in graph.modules]
    for imported in sorted(graph.find_modules_directly_imported_by(importer)):
        details = graph.get_import_details(importer=importer, imported=imported)
        if any(d["line_number"] in lines for d in details):
            found.append(imported)
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def root_packages(contract: Contract) -> set[str]:
    """The project's packages (``root_packages`` of the configuration): all else is external."""
    options = contract.session_options
    roots = options.get("root_packages") or [options["root_package"]]
    return {str(root) for root in roots}


def module_level_chain(
    graph: ImportGraph, source: str, forbidden: set[str], roots: set[str]
) -> list[str] | None:
    """The shortest chain of module-level imports from ``source`` to a forbidden module."""

    def is_forbidden(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in forbidden)

    previous: dict[str, str | None] = {source: None}
    queue = deque([source])
    while queue:
        module = queue.popleft()
        if is_forbidden(module):
            chain = [module]
            while (before := previous[chain[-1]]) is not None:
                chain.append(before)
            return chain[::-1]
        if _top(module) not in roots:
            continue  # external: squashed in the graph, its own imports are not followed
        for imported in loaded_by(graph, module):
            if imported not in previous:
                previous[imported] = module
                queue.append(imported)
    return None


def names(contract: Contract, field: str) -> list[str]:
    """The module names of a list-of-modules field (a list of ``Module`` once parsed)."""
    return [module.name for module in getattr(contract, field)]


class ModuleLevelForbiddenContract(Contract):
    """Importing a source module never loads a forbidden module (see the module docstring)."""

    source_modules = fields.ListField(subfield=fields.ModuleField())
    forbidden_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        forbidden = set(names(self, "forbidden_modules"))
        chains = []
        for source in names(self, "source_modules"):
            if source not in graph.modules:
                raise ValueError(f"module {source} is not in the graph")
            chain = module_level_chain(graph, source, forbidden, root_packages(self))
            if chain is not None:
                chains.append(chain)
        return ContractCheck(kept=not chains, metadata={"chains": chains})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for chain in check.metadata["chains"]:
            output.print_error(f"importing {chain[0]} loads {chain[-1]}:")
            output.print_error("    " + " -> ".join(chain), bold=False)
            output.new_line()


class PublicEntryPointsContract(Contract):
    """The source modules import only ``allowed_modules`` of the project's other packages."""

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        allowed = set(names(self, "allowed_modules"))
        roots = root_packages(self)
        bad: list[tuple[str, str]] = []
        for source in names(self, "source_modules"):
            own = _top(source)
            modules = {source} | graph.find_descendants(source)
            for importer in sorted(modules):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if _top(imported) not in roots or _top(imported) == own:
                        continue  # external, or the sources' own package
                    if imported not in allowed:
                        bad.append((importer, imported))
        return ContractCheck(kept=not bad, metadata={"imports": bad})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(names(self, "allowed_modules"))
        for importer, imported in check.metadata["imports"]:
            output.print_error(f"{importer} imports {imported}; allowed: {allowed}")
        output.new_line()
