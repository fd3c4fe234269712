"""Package boundaries (docs/design.md 7.1): core depends on no application package,
and the demo and the survey depend only on core and themselves."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"core", "training", "demo", "survey", "benchmarks"}
ALLOWED = {
    "core": {"core"},
    "demo": {"core", "demo"},
    "survey": {"core", "survey"},
}


def _imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    package = path.relative_to(root).parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = [*package[: len(package) - node.level + 1]] if node.level else []
            if node.module:
                parts.append(node.module)
            names.add(".".join(parts))
            # `from pkg import name` may import the module pkg.name
            names.update(".".join([*parts, alias.name]) for alias in node.names)
    return names


def _violations(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in sorted(_imported_modules(path)):
            top = name.split(".")[0]
            if top in PROJECT_PACKAGES and top not in ALLOWED[folder]:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_package_imports_only_allowed_packages(folder) -> None:
    if not (ROOT / folder).is_dir():
        pytest.skip(f"{folder}/ does not exist yet")
    assert _violations(folder) == []


def test_checker_resolves_every_import_form(tmp_path) -> None:
    path = tmp_path / "core" / "models" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "import numpy as np, training.train\n"
        "from . import unet\n"
        "from ..colorspace import rgb_to_lab\n"
        "from ... import demo\n"
        "def f():\n"
        "    from survey.app import main\n"
    )
    assert _imported_modules(path, tmp_path) == {
        "numpy",
        "training.train",
        "core.models",
        "core.models.unet",
        "core.colorspace",
        "core.colorspace.rgb_to_lab",
        "",
        "demo",
        "survey.app",
        "survey.app.main",
    }
