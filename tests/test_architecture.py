"""The layout's rules hold (docs/architecture.md): the core of data/ imports no sub-package,
a sub-package imports the core and not its siblings, and pages never touch SQL."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SUBPACKAGES = sorted(p.name for p in DATA.iterdir() if (p / "__init__.py").exists())
# One-way dependencies between sub-packages that are real (docs/architecture.md): the
# explorer draws the figures of the analysis package, and the reports take their figures by
# department from its grouped pass; the analysis package knows nothing of either. Screen
# tokens are made like the ingest API's tokens (data/auth/screens.py). Acknowledgement links
# are signed with a key derived from the session key (data/notify/links.py). The demo plant
# comes with an escalation policy (data/demo/escalation.yaml). The one sender builds the
# scheduled weekly pack and tells the plant (data/reports/schedule.py).
ALLOWED = {"explorer": {"analysis"}, "reports": {"analysis"}, "auth": {"ingest"},
           "notify": {"auth", "reports"}, "demo": {"notify"}}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as dotted names (`from data import x` gives data.x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def data_packages_imported(path: Path) -> set[str]:
    return {name.split(".")[1] for name in imported_modules(path)
            if name.startswith("data.") and name.split(".")[1] in SUBPACKAGES}


def test_there_are_subpackages_to_check():
    assert {"wall", "demo", "ingest", "reports"} <= set(SUBPACKAGES)


def test_the_core_imports_no_subpackage():
    for path in DATA.glob("*.py"):
        assert not data_packages_imported(path), f"{path.name} imports a sub-package"


def test_subpackages_import_the_core_and_not_their_siblings():
    for package in SUBPACKAGES:
        for path in (DATA / package).rglob("*.py"):
            others = data_packages_imported(path) - {package} - ALLOWED.get(package, set())
            assert not others, f"data/{package}/{path.name} imports {sorted(others)}"


def test_allowed_dependencies_run_one_way():
    for package, needed in ALLOWED.items():
        for other in needed:
            assert package not in ALLOWED.get(other, set()), f"{package} and {other} import each other"


def test_pages_build_no_sql():
    for path in (ROOT / "dashboards").glob("*.py"):
        imported = imported_modules(path)
        assert not any(name.split(".")[0] == "sqlalchemy" for name in imported), path.name
        assert not any(name in ("data.queries", "data.db", "data.models") for name in imported), path.name
