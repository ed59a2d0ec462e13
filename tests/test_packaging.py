"""tongfa as a user installs it: a wheel built with `python -m build` (sdist, then the wheel
from the sdist), installed in a fresh venv with the extra the README names, and `tongfa demo`
run from it in a folder outside the source tree. Nothing of the checkout is on its path, so
a template, an example or a dependency the wheel does not carry fails here.

pip installs the dependencies the way this machine's pip is set up (its index and cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TITLE = "省政府召开常务会议部署冬季安全生产工作"  # examples/release.yaml


def clean_env() -> dict[str, str]:
    """The environment without anything pointing back at the checkout or the test venv."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items()
           if k not in dropped and not k.startswith("TONGFA_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(args[:4])} … exited {done.returncode}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
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
    run([sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent,
        timeout=60)
    run([sys.executable, "-m", "pip", "--python", str(where / "bin" / "python"), "install",
         "--quiet", "--no-compile", f"{wheel}[sandbox]"], cwd=where.parent, timeout=300)
    return where


def test_the_wheel_carries_templates_and_examples_as_package_data(wheel: Path):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    for folder in ("templates", "examples"):
        shipped = {f"tongfa_data/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                   for p in (ROOT / folder).rglob("*") if p.is_file()}
        assert shipped and shipped <= names, f"{folder}/ missing: {sorted(shipped - names)}"
    # nothing of a generic name dropped at the top of site-packages
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    assert tops <= {"orchestrator", "channels", "workers", "tongfa_data",
                    wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}


def test_the_wheel_needs_no_sandbox_server_or_test_client_to_run(wheel: Path):
    with zipfile.ZipFile(wheel) as whl:
        (meta,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []
    runtime = {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower()
               for r in requires if "extra ==" not in r}
    assert not runtime & {"asyncssh", "aiosmtpd", "httpx", "pytest"}
    assert any("asyncssh" in r and 'extra == "sandbox"' in r for r in requires)


def test_tongfa_demo_runs_from_the_installed_wheel(venv: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python, tongfa = venv / "bin" / "python", venv / "bin" / "tongfa"
    where = run([str(python), "-c", "import channels, orchestrator;"
                 "print(channels.__file__); print(orchestrator.__file__)"],
                cwd=elsewhere, timeout=60).stdout.splitlines()
    assert all(str(venv) in line for line in where), where  # the wheel's code, not the checkout
    data = tmp_path / "var"
    done = run([str(tongfa), "demo", "--json", "--keep", str(data), "--timeout", "60"],
               cwd=elsewhere, timeout=150)
    report = json.loads(done.stdout)
    assert report["state"] == "published", report
    assert report["channels"] and {c["state"] for c in report["channels"]} == {"published"}
    page = data / "site" / "articles" / f"{report['release']}.html"
    html = page.read_text(encoding="utf-8")  # rendered from templates/website/
    assert html.startswith("<!DOCTYPE html>") and SAMPLE_TITLE in html
    assert (data / "site" / "index.html").is_file()
