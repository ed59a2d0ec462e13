"""The production stack as files: docker-compose.yml, env examples, nginx, the Dockerfile.

No Docker engine runs here (nor in CI): the compose file is validated against the Compose
Specification's JSON Schema, and every command a container runs is checked against what the
project provides: a `tongfa` subcommand with those options, a module that imports, a port
that matches on both sides."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from cryptography.fernet import Fernet
from sqlmodel import select

from orchestrator import observability
from orchestrator.settings import Settings
from orchestrator.store import secrets
from orchestrator.store.db import engine_for
from orchestrator.store.models import AuditEvent, ChannelInstance
from orchestrator.usecases import audit, channels
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.services import missing

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parents[2] / "shared/schemas/compose/compose-spec.json"
ONE_SHOT = {"migrate"}
SETTINGS_VARS = {f"TONGFA_{name.upper()}" for name in Settings.model_fields}
SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential", re.I)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the tongfa image (the others are postgres, redis, ...)."""
    return {n: s for n, s in compose["services"].items() if s.get("image", "").startswith("tongfa:")}


def argv(command: Any) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def health_argv(service: dict[str, Any]) -> list[str]:
    test = service.get("healthcheck", {}).get("test") or []
    if isinstance(test, str) or test[0] == "CMD-SHELL":
        return shlex.split(test if isinstance(test, str) else test[1])
    return [str(t) for t in test[1:]]


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file") or []
    return [f if isinstance(f, str) else f["path"] for f in ([files] if isinstance(files, str) else files)]


def env_example(path: str) -> dict[str, str]:
    """KEY=VALUE lines of an example, commented-out ones included (documented options)."""
    text = (ROOT / f"{path}.example").read_text(encoding="utf-8")
    return dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", text, re.M))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return dict(i.split("=", 1) for i in env) if isinstance(env, list) else {k: str(v) for k, v in env.items()}


def _validator() -> Any:
    """The schema's validator; when it or jsonschema is missing, tests.services.missing
    decides (in CI a failure, never a skip)."""
    if not SCHEMA.is_file():
        missing(f"the Compose Specification schema is not at {SCHEMA} (shared/ beside the repo)")
    try:
        import jsonschema
    except ImportError:
        missing("jsonschema is not installed")
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_compose_file_follows_the_compose_specification(compose):
    errors = sorted(_validator().iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                                 for e in errors)


def test_the_schema_check_does_reject_a_mistake(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["comand"] = broken["services"]["api"].pop("command")
    assert any("comand" in e.message for e in _validator().iter_errors(broken))


# ------------------------------------------------------------------ the stack's shape


def test_the_services_the_issue_asks_for(compose):
    svc = compose["services"]
    assert {"postgres", "redis", "rabbitmq", "migrate", "api", "worker", "worker-urgent",
            "scheduler", "site", "flower"} <= set(svc)
    assert svc["postgres"]["image"].split(":")[1].startswith("16")
    assert "pg_isready" in " ".join(health_argv(svc["postgres"]))
    assert option(argv(svc["redis"]["command"]), "--appendonly") == "yes"
    assert svc["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert svc["scheduler"]["deploy"]["replicas"] == 1
    # `--scale worker=4` needs no fixed container name and no host port
    assert all("container_name" not in s for s in svc.values())
    assert not svc["worker"].get("ports") and not svc["worker-urgent"].get("ports")


def test_workers_cover_every_queue_and_urgent_has_its_own(compose):
    """The queues are named once (orchestrator.usecases.unit_of_work.Queue)."""
    from orchestrator.usecases.unit_of_work import QUEUES

    served = {name: option(argv(s["command"]), "--queues") for name, s in ours(compose).items()
              if argv(s["command"])[:2] == ["tongfa", "worker"]}
    assert served == {"worker": "normal", "worker-urgent": "urgent",
                      "worker-integrity": "integrity"}
    assert set(served.values()) == set(QUEUES) == set(observability.QUEUES)


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert check.get("disable") is True and service["restart"] == "no"
            continue
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_depends_on_names_real_services_and_the_migration_comes_first(compose):
    for name, service in compose["services"].items():
        for target in service.get("depends_on") or []:
            assert target in compose["services"] and target != name, f"{name} -> {target}"
        if name in ours(compose) and name not in ONE_SHOT:
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def _volume_sources(service: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            yield source, target, "ro" in mode
        else:
            yield volume.get("source", ""), volume["target"], bool(volume.get("read_only"))


def test_every_named_volume_is_declared_and_used(compose):
    declared, used = set(compose.get("volumes") or {}), set()
    for name, service in compose["services"].items():
        for source, _, _ in _volume_sources(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared


def test_the_website_volume_is_written_by_tongfa_and_served_read_only(compose):
    site_mounts = {name: (target, ro) for name, s in compose["services"].items()
                   for source, target, ro in _volume_sources(s) if source == "site"}
    conf = (ROOT / "deploy/nginx/site.conf").read_text(encoding="utf-8")
    nginx_root = re.search(r"^\s*root\s+([^;]+);", conf, re.M)[1]
    assert site_mounts.pop("site") == (nginx_root, True)
    for name, (target, ro) in site_mounts.items():
        assert not ro and target == environment(compose["services"][name])["TONGFA_SITE_ROOT"]
    assert {"worker", "worker-urgent", "scheduler", "api"} <= set(site_mounts)
    # what the API's /site hides, nginx hides too: staging, lock, manifest
    assert r"location ~ (^|/)\." in conf and r"manifest\.json" in conf
    # and what a withdrawal took down answers 410 there too, files as well as pages
    assert conf.count("if (-f $document_root/.gone$uri) { return 410; }") == 2
    assert "immutable" not in conf  # a withdrawn file must not live on in caches


# ------------------------------------------------------------------ commands that exist


def _click_command(args: list[str]) -> tuple[Any, list[str]]:
    """Walk `tongfa a b --x y` down the Typer app (groups have `commands`: Typer has its
    own copy of click); return the command and what follows."""
    from orchestrator.cli.main import app

    command = typer.main.get_command(app)
    rest = args[1:]
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        assert rest[0] in command.commands, f"`tongfa {rest[0]}` is not a command"
        command, rest = command.commands[rest[0]], rest[1:]
    assert not hasattr(command, "commands"), f"{args}: a command group, not a command"
    return command, rest


def _assert_options_exist(command: Any, rest: list[str], what: str) -> None:
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for arg in rest:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in known, f"{what}: no option {arg}"


def _all_commands(compose: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    for name, service in ours(compose).items():
        yield name, argv(service["command"])
        if service.get("healthcheck", {}).get("test"):
            yield f"{name} healthcheck", health_argv(service)


def test_tongfa_commands_are_registered_subcommands_with_those_options(compose):
    seen = set()
    for what, args in _all_commands(compose):
        if args[0] == "tongfa":
            command, rest = _click_command(args)
            _assert_options_exist(command, rest, what)
            seen.add(" ".join(a for a in args[1:3] if not a.startswith("-")))
    assert {"db upgrade", "scheduler"} <= seen and any(s.startswith("worker") for s in seen)


def test_the_command_check_catches_a_wrong_subcommand_or_option():
    with pytest.raises(AssertionError, match="not a command"):
        _click_command(["tongfa", "workers"])
    with pytest.raises(AssertionError, match="no option --queue"):
        _assert_options_exist(*_click_command(["tongfa", "worker", "--queue", "normal"]), "worker")


def test_uvicorn_is_given_the_asgi_app_and_real_options(compose):
    from uvicorn import main as uvicorn_cli

    args = argv(compose["services"]["api"]["command"])
    assert args[0] == "uvicorn" and args[1] == "orchestrator.api.asgi:app"
    assert int(option(args, "--workers")) >= 2
    assert "--no-proxy-headers" in args  # else uvicorn believes X-Forwarded-For itself
    _assert_options_exist(uvicorn_cli, args[2:], "api")


def test_python_and_celery_modules_named_by_the_stack_exist(compose):
    modules = set()
    for what, args in _all_commands(compose):
        if args[0] == "python" and args[1] == "-m":
            modules.add(args[2])
        if args[0] == "celery":
            modules.add(option(args, "-A"))
            if "ping" in args:  # a worker's healthcheck pings its own node name
                worker = what.removesuffix(" healthcheck")
                name = option(argv(compose["services"][worker]["command"]), "--name")
                assert option(args, "-d").startswith(f"{name}@"), what
    assert modules == {"orchestrator.observability", "workers.celery_app"}
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_the_entry_modules_import_and_build_their_apps(tmp_path):
    """In a clean process: importing them builds the ASGI app and the Celery app from TONGFA_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGFA_")}
    env["TONGFA_VAR_DIR"] = str(tmp_path)
    script = ("import celery, orchestrator.api.asgi as a, workers.celery_app as w; "
              "assert callable(a.app) and isinstance(w.app, celery.Celery); print('ok')")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_every_tongfa_variable_is_a_setting(compose):
    named = {}
    for name, service in compose["services"].items():
        named.update({k: f"docker-compose.yml {name}" for k in environment(service)})
        for path in env_files(service):
            named.update({k: f"{path}.example" for k in env_example(path)})
    unknown = {k: where for k, where in named.items()
               if k.startswith("TONGFA_") and k not in SETTINGS_VARS}
    assert not unknown, f"not fields of orchestrator.settings.Settings: {unknown}"
    assert {"TONGFA_DATABASE_URL", "TONGFA_BROKER_URL", "TONGFA_SECRET_KEY",
            "TONGFA_AUDIT_SIGNING_KEY", "TONGFA_AUDIT_WITNESS_DIR"} <= set(
                env_example("deploy/tongfa.env"))


def test_secrets_come_only_from_env_files_with_examples(compose):
    for name, service in compose["services"].items():
        for key, val in environment(service).items():
            assert not SECRET_NAME.search(key), f"{name}: secret-like {key} inline"
            assert not re.search(r"://[^/\s:@]*:[^@\s/]+@", val), f"{name}: password in {key}"
        for path in env_files(service):
            assert (ROOT / f"{path}.example").is_file(), f"{path}.example is missing"
            for key, val in env_example(path).items():
                if SECRET_NAME.search(key) or re.search(r"://[^/\s:@]*:[^@\s/]+@", val):
                    assert "CHANGE_ME" in val, f"{path}.example: {key} must be a placeholder"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "deploy/*.env" in ignored  # filled-in env files never reach an image


def _published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """("[ip:]host", container) of each short-syntax mapping."""
    pairs = [str(port).rsplit(":", 1) for port in service.get("ports") or []]
    return [(host, int(container)) for host, container in pairs]


def _health_port(service: dict[str, Any]) -> int | None:
    match = re.search(r"http://127\.0\.0\.1(?::(\d+))?/", " ".join(health_argv(service)))
    return None if match is None else int(match[1] or 80)


def test_ports_agree_between_mapping_command_and_healthcheck(compose):
    svc = compose["services"]
    host_ports = [host for s in svc.values() for host, _ in _published(s)]
    assert len(host_ports) == len(set(host_ports)), "two services publish one host port"
    for name in ("api", "flower"):
        ((host, container),) = _published(svc[name])
        assert host.startswith("127.0.0.1:"), f"{name} must not listen on every interface"
        assert int(option(argv(svc[name]["command"]), "--port")) == container
        assert _health_port(svc[name]) == container
    ((_, site_port),) = _published(svc["site"])
    conf = (ROOT / "deploy/nginx/site.conf").read_text(encoding="utf-8")
    assert f"listen {site_port};" in conf and _health_port(svc["site"]) == site_port
    for name in ("postgres", "redis", "rabbitmq"):  # reachable only inside the stack
        assert not svc[name].get("ports")


# ------------------------------------------------------------------ the Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln.strip() else "")
            for ln in joined.splitlines() if ln.strip()]


def test_dockerfile_is_multi_stage_non_root_and_runs_the_api():
    instructions = dockerfile()
    starts = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert len(starts) >= 2, "multi-stage: a builder and a final image"
    assert re.search(r"\bAS builder\b", instructions[starts[0]][1], re.I)
    builder = " ".join(a for op, a in instructions[starts[0]:starts[-1]] if op == "RUN")
    assert "pip wheel" in builder and "tongfa-*.whl" in builder and "flower" in builder
    final = instructions[starts[-1]:]
    assert any(op == "COPY" and "--from=builder" in a for op, a in final)
    users = [a.split(":")[0].strip() for op, a in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final image must not run as root"
    env = " ".join(a for op, a in final if op == "ENV")
    assert re.search(r"PATH=/opt/tongfa/bin:", env), "`tongfa` must be on PATH"
    (cmd,) = [json.loads(a) for op, a in final if op == "CMD"][-1:]
    assert cmd[:2] == ["uvicorn", "orchestrator.api.asgi:app"] and "--no-proxy-headers" in cmd


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    copies = [a.split()[:-1] for op, a in dockerfile() if op == "COPY" and "--from=" not in a]
    for source in (source for sources in copies for source in sources):
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


# ------------------------------------------------------------------ key rotation (docs/deploy.md)


def test_the_key_rotation_script_reencrypts_every_channel_with_an_audit_event(tmp_path):
    spec = importlib.util.spec_from_file_location("rotate", ROOT / "deploy/rotate_secret_key.py")
    rotate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rotate)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'tongfa.db'}"
    old, new = (Settings(var_dir=tmp_path, database_url=url, secret_key=key, _env_file=None)
                for key in (old_key, new_key))
    ctx = Context(engine_for(url), old)
    for name in ("alpha", "beta"):
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, "memory", {"account": name},
                                  {"token": f"tok-{name}"}, "admin")

    assert rotate.rotate(ctx, new_key) == 2
    with UnitOfWork(ctx) as uow:
        rows = list(uow.session.exec(select(ChannelInstance).order_by(ChannelInstance.name)))
        events = list(uow.session.exec(select(AuditEvent.channel)
                                       .where(AuditEvent.action == "channel.key_rotated")))
        verdict = audit.verify(uow.session, old)
    assert [secrets.decrypt(new, r.credentials_encrypted)["token"] for r in rows] == [
        "tok-alpha", "tok-beta"]
    with pytest.raises(secrets.CredentialsUnreadable):
        secrets.decrypt(old, rows[0].credentials_encrypted)
    assert sorted(events) == ["alpha", "beta"] and verdict["ok"], verdict
    assert rotate.rotate(Context(ctx.engine, new), new_key) == 2  # running it twice is harmless
