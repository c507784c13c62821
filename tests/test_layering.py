"""The pure core imports no web framework and no database layer (STYLE: imports point inward)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authsvc"
PURE = ["errors", "scopes", "policy", "tokens", "certs", "keys", "passwords", "registry_config",
        "config", "credential_cache"]
FORBIDDEN = ("flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug", "authsvc.models",
             "authsvc.api", "authsvc.cli", "authsvc.accounts", "authsvc.state")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_from_the_outer_layers(module: str) -> None:
    imports = imported_modules(PACKAGE / f"{module}.py")
    bad = sorted(name for name in imports
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))
    assert bad == []


def test_nothing_but_the_app_factory_imports_the_web_or_cli_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        if path.parent.name in ("api", "cli"):
            continue
        imports = imported_modules(path)
        assert not any(n.split(".")[:2] in (["authsvc", "api"], ["authsvc", "cli"])
                       for n in imports), path
