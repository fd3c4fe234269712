"""Package boundaries (docs/design.md 7.1), over every `.py` of every package and
`app.py`: core imports no other project package; training imports core; demo and
survey import core; benchmarks import core, training and the public APIs of demo and
survey; app.py imports core, demo and survey's public API. A public API is the names
of a package's `__all__`, imported from the package itself (`from survey import
build_study`), never one of its modules (`survey.db`)."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"core", "training", "demo", "survey", "benchmarks"}
SCRIPTS = ("app.py",)  # top-level programs, checked like packages
# what the files of each folder (or script) may import: whole packages, and packages
# whose public API alone they may use
ALLOWED = {
    "core": {"core"},
    "training": {"core", "training"},
    "demo": {"core", "demo"},
    "survey": {"core", "survey"},
    "benchmarks": {"core", "training", "benchmarks"},
    "app.py": {"core", "demo"},
}
PUBLIC_ONLY = {
    # benchmarks/web_upload.py measures the app's upload path through build_demo
    "benchmarks": {"demo", "survey"},
    "app.py": {"survey"},
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


def _public_api(package: str) -> set[str]:
    """The names a package exports (`__all__`; importing the package is cheap)."""
    return set(importlib.import_module(package).__all__)


def _public_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, [names]) of every absolute `from module import names` in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.module, [alias.name for alias in node.names])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
    ]


def _files(target: str, root: Path) -> list[Path]:
    path = root / target
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _violations(target: str, root: Path = ROOT) -> list[str]:
    """Every import of a folder's (or script's) files that its rule forbids."""
    found = []
    public = PUBLIC_ONLY.get(target, set())
    for path in _files(target, root):
        rel = path.relative_to(root)
        modules = _imported_modules(path, root)
        for name in sorted(modules):
            top = name.split(".")[0]
            if top not in PROJECT_PACKAGES or top in ALLOWED[target]:
                continue
            if top in public:
                continue  # checked below: names of its public API only
            found.append(f"{rel} imports {name}")
        for module, names in _public_imports(path):
            top = module.split(".")[0]
            if top not in public:
                continue
            if module != top:
                found.append(f"{rel} imports {module}, not {top}'s public API")
                continue
            for name in sorted(set(names) - _public_api(top)):
                found.append(f"{rel} imports {top}.{name}, not in {top}.__all__")
        for name in modules:
            top = name.split(".")[0]
            if (
                top in public
                and name.count(".")
                and name.split(".")[1] in {p.stem for p in (root / top).iterdir()}
            ):
                found.append(f"{rel} imports the module {name}")
    return sorted(set(found))


@pytest.mark.parametrize("target", sorted(ALLOWED))
def test_package_imports_only_allowed_packages(target) -> None:
    if not (ROOT / target).exists():
        pytest.skip(f"{target} does not exist yet")
    assert _violations(target) == []


def test_every_package_and_script_is_checked() -> None:
    checked = set(ALLOWED)
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    scripts = {p.name for p in ROOT.glob("*.py")}
    assert packages - {"tests"} <= checked
    assert scripts <= checked


def test_public_apis_name_what_they_export() -> None:
    import demo
    import survey

    for package in (demo, survey):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"


def test_checker_refuses_a_survey_module_outside_survey(tmp_path) -> None:
    for package in ("survey", "benchmarks"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "survey" / "db.py").write_text("")
    (tmp_path / "benchmarks" / "x.py").write_text(
        "from survey import build_study, not_public\n"
        "from survey.db import init_db\n"
        "from survey import db\n"
        "import survey.db\n"
    )
    assert _violations("benchmarks", tmp_path) == sorted(
        {
            "benchmarks/x.py imports survey.not_public, not in survey.__all__",
            "benchmarks/x.py imports survey.db, not survey's public API",
            "benchmarks/x.py imports survey.db, not in survey.__all__",
            "benchmarks/x.py imports the module survey.db",
            "benchmarks/x.py imports the module survey.db.init_db",
        }
    )


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
