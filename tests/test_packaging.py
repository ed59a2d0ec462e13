"""tongfa as a user installs it: a wheel built with `python -m build` (sdist, then the wheel
from the sdist), installed in a fresh venv with the extra the README names, and `tongfa demo`
run from it in a folder outside the source tree. Nothing of the checkout is on its path, so
a template, an example or a dependency the wheel does not carry fails here.

pip installs the dependencies the way this machine's pip is set up (its index and cache)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TITLE = "省政府召开常务会议部署冬季安全生产工作"  # examples/release.yaml
# code an installation without extras never imports: the desk's servers (extra `sandbox`),
# the contract kit's pytest plugin (extra `test`)
EXTRA_ONLY = {"channels/sandbox/desk.py": "sandbox", "channels/contract_kit.py": "test"}
OWN = {"orchestrator", "channels", "workers", "tongfa_data"}


def clean_env() -> dict[str, str]:
    """The environment without anything pointing back at the checkout or the test venv."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("TONGFA_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(args[:4])} … exited {done.returncode}\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out, timeout=180)
    (built,) = out.glob("tongfa-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and what it declares, with the `sandbox` extra."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent, timeout=60)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(where / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            f"{wheel}[sandbox]",
        ],
        cwd=where.parent,
        timeout=300,
    )
    return where


def test_the_wheel_carries_templates_and_examples_as_package_data(wheel: Path):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    for folder, files in (("templates", "*/*"), ("examples", "*")):  # the example plugin stays
        shipped = {
            f"tongfa_data/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).glob(files)
            if p.is_file()
        }
        assert shipped and shipped <= names, f"{folder}/ missing: {sorted(shipped - names)}"
    # nothing of a generic name dropped at the top of site-packages
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    assert tops <= {
        "orchestrator",
        "channels",
        "workers",
        "tongfa_data",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }


def test_the_wheel_needs_no_sandbox_server_or_test_client_to_run(wheel: Path):
    with zipfile.ZipFile(wheel) as whl:
        (meta,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []
    runtime = {
        r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower()
        for r in requires
        if "extra ==" not in r
    }
    assert not runtime & {"asyncssh", "aiosmtpd", "httpx", "pytest"}
    assert any("asyncssh" in r and 'extra == "sandbox"' in r for r in requires)


def test_tongfa_demo_runs_from_the_installed_wheel(venv: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python, tongfa = venv / "bin" / "python", venv / "bin" / "tongfa"
    where = run(
        [
            str(python),
            "-c",
            "import channels, orchestrator;print(channels.__file__); print(orchestrator.__file__)",
        ],
        cwd=elsewhere,
        timeout=60,
    ).stdout.splitlines()
    assert all(str(venv) in line for line in where), where  # the wheel's code, not the checkout
    data = tmp_path / "var"
    done = run(
        [str(tongfa), "demo", "--json", "--keep", str(data), "--timeout", "60"],
        cwd=elsewhere,
        timeout=150,
    )
    report = json.loads(done.stdout)
    assert report["state"] == "published", report
    assert report["channels"] and {c["state"] for c in report["channels"]} == {"published"}
    page = data / "site" / "articles" / f"{report['release']}.html"
    html = page.read_text(encoding="utf-8")  # rendered from templates/website/
    assert html.startswith("<!DOCTYPE html>") and SAMPLE_TITLE in html
    assert (data / "site" / "index.html").is_file()


def _closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements bring in, as installed here (extras followed)."""
    found: set[str] = set()
    todo = [(r, set(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a marker-only dependency of another platform
        if name in found and not extras:
            continue
        found.add(name)
        for text in dist.requires or []:
            sub = Requirement(text)
            if not sub.marker or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((sub, set(sub.extras)))
    return found


def test_code_outside_the_extras_imports_only_declared_dependencies():
    """What `pip install tongfa` brings is enough for everything but the desk sandbox and
    the contract kit: an import of a test or sandbox library elsewhere fails here."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = _closure([Requirement(r) for r in declared["project"]["dependencies"]])
    providers = packages_distributions()
    wrong = []
    for folder in ("orchestrator", "channels", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where in EXTRA_ONLY:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for top in {n.split(".")[0] for n in names}:
                    if top in sys.stdlib_module_names or top in OWN:
                        continue
                    dists = {canonicalize_name(d) for d in providers.get(top, [])}
                    if not dists & runtime:
                        wrong.append(f"{where}:{node.lineno} imports {top} ({sorted(dists)})")
    assert not wrong, "not in pyproject's dependencies: " + "; ".join(wrong)
