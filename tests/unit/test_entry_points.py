"""The entry points (api/, web/, cli/, workers/) never import each other: each builds what it
needs through orchestrator/bootstrap.py, the one place that knows them all."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ("orchestrator.api", "orchestrator.web", "orchestrator.cli", "workers")


def entry_point_of(module: str) -> str | None:
    return next((p for p in ENTRY_POINTS if module == p or module.startswith(f"{p}.")), None)


def imports_of(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in a module of `package`, inside functions too;
    `from a import b` counts as a.b as well, since b may be a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, `level - 1` packages up
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def cross_imports() -> list[str]:
    crossed = []
    for package in ENTRY_POINTS:
        for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            own = ".".join(parts[:-1])  # the package a relative import starts from
            for line, imported in imports_of(path.read_text(encoding="utf-8"), own):
                other = entry_point_of(imported)
                if other is not None and other != package:
                    crossed.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return crossed


def test_no_entry_point_imports_another():
    assert cross_imports() == []


def test_imports_inside_functions_and_relative_ones_are_read():
    source = (
        "from . import pages\nfrom ..cli import stack\n"
        "def f():\n    import workers.tasks\n    from orchestrator import api\n"
    )
    found = {module for _, module in imports_of(source, "orchestrator.web")}
    assert {
        "orchestrator.web.pages",
        "orchestrator.cli.stack",
        "workers.tasks",
        "orchestrator.api",
    } <= found
    assert {entry_point_of(m) for m in found} == set(ENTRY_POINTS) | {None}


def test_the_workers_serve_every_task_of_the_task_table_and_no_other():
    """One task table (orchestrator.usecases.work): Celery's tasks are made from it."""
    from orchestrator.usecases.work import TASKS
    from workers import tasks
    from workers.celery_app import app

    ours = {name for name in app.tasks if name.startswith("tongfa.")}
    assert ours == {f"tongfa.{name}" for name in TASKS} == {f"tongfa.{n}" for n in tasks.tasks}
