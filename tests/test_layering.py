"""Imports point inward (STYLE), checked per folder: each layer of ``authsvc/`` imports only
the layers below it, and the pure ones nothing of a web framework or a database."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authsvc"

WEB_AND_DATABASE = ("flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug", "alembic", "granian")
#: What the modules of each folder (or top-level module) must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # keys and certificates below the pure domain (token minting signs with a key): neither
    # imports a framework, the database or an outer layer
    "errors.py": ("authsvc.", *WEB_AND_DATABASE),
    "config.py": ("authsvc.db", "authsvc.pki", "authsvc.web", "authsvc.server", "authsvc.cli",
                  "authsvc.app", *WEB_AND_DATABASE),
    "core": ("authsvc.db", "authsvc.web", "authsvc.server", "authsvc.cli",
             "authsvc.app", "authsvc.config", *WEB_AND_DATABASE),
    "pki": ("authsvc.core", "authsvc.db", "authsvc.web", "authsvc.server", "authsvc.cli",
            "authsvc.app", *WEB_AND_DATABASE),
    # talking to and configuring the registry (and its nginx front): over the pure domain and
    # the settings, below the database
    "registry": ("authsvc.db", "authsvc.web", "authsvc.server", "authsvc.cli", "authsvc.app",
                 *WEB_AND_DATABASE),
    # authsvc doctor's checks: over the pure domain, the keys and the registry client, below
    # the database (the command hands in what the database knows)
    "diagnosis": ("authsvc.db", "authsvc.web", "authsvc.server", "authsvc.cli", "authsvc.app",
                  *WEB_AND_DATABASE),
    # the metrics' definitions: nothing of authsvc, no framework; every layer may count into it
    "observability": ("authsvc.", *WEB_AND_DATABASE),
    # the database side: no web framework (flask_sqlalchemy's models aside), no outer layer
    "db": ("authsvc.web", "authsvc.server", "authsvc.cli", "authsvc.app", "flask", "werkzeug",
           "granian"),
    "web": ("authsvc.server", "authsvc.cli", "authsvc.app"),
    "server": ("authsvc.cli", "authsvc.web"),
}


def imported_modules(path: Path) -> set[str]:
    """What ``path`` imports when it runs (imports for type checkers only are left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for inner in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def forbidden(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or inside one ("authsvc." forbids every submodule)."""
    return any(name.startswith(p) if p.endswith(".") else (name == p or name.startswith(p + "."))
               for p in prefixes)


def modules_of(place: str) -> list[Path]:
    path = PACKAGE / place
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("place", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_lies_below_it(place: str) -> None:
    modules = modules_of(place)
    assert modules, place
    bad = {str(path.relative_to(PACKAGE)): sorted(
        name for name in imported_modules(path) if forbidden(name, FORBIDDEN[place]))
        for path in modules}
    assert {path: names for path, names in bad.items() if names} == {}


def test_every_module_lies_in_a_layer() -> None:
    """A new module lands in a folder the test knows (or is the composition root)."""
    top = {path.name for path in PACKAGE.glob("*.py")}
    assert top == {"__init__.py", "app.py", "config.py", "errors.py"}
    folders = {path.name for path in PACKAGE.iterdir()
               if path.is_dir() and path.name != "__pycache__"}
    assert folders == {"core", "pki", "registry", "diagnosis", "observability", "db", "web",
                       "server", "cli"}


@pytest.mark.parametrize("module", ["authsvc.core.scopes", "authsvc.core.policy",
                                    "authsvc.core.tokens", "authsvc.pki.certs",
                                    "authsvc.config", "authsvc.diagnosis.checks"])
def test_importing_the_pure_layers_loads_no_framework(module: str) -> None:
    """Importing a pure module (and the packages above it, ``authsvc/__init__`` included)
    loads neither Flask nor SQLAlchemy."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('flask', 'sqlalchemy', 'werkzeug') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
