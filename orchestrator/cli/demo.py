"""`tongfa demo`: the sample release through the default review to every channel, then exit.

It runs in a data directory of its own (temporary unless --keep), on a free port,
so it never touches a running installation.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from importlib.resources import as_file
from pathlib import Path

import typer
import yaml

from channels.templating import shipped
from orchestrator.domain.release import parse_release
from orchestrator.domain.states import ReleaseState as R
from orchestrator.settings import Settings, get_settings

SAMPLE = shipped("examples") / "release.yaml"  # package data in a wheel (setup.py)
FINAL = {R.PUBLISHED, R.PARTIALLY_PUBLISHED, R.FAILED}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_demo(json_out: bool, keep: Path | None, timeout: float) -> int:
    var = keep or Path(tempfile.mkdtemp(prefix="tongfa-demo-"))
    port = free_port()
    os.environ.update(TONGFA_VAR_DIR=str(var), TONGFA_PORT=str(port),
                      TONGFA_SITE_BASE_URL=f"http://127.0.0.1:{port}/site",
                      TONGFA_DESK_SFTP_PORT=str(free_port()), TONGFA_DESK_SMTP_PORT=str(free_port()))
    get_settings.cache_clear()
    settings = get_settings()
    from orchestrator.bootstrap import installed_context
    from orchestrator.cli import seed
    from orchestrator.cli.stack import Stack

    ctx = installed_context(settings)
    seed.seed_users(ctx)
    names = seed.seed_channels(ctx, f"http://127.0.0.1:{port}")
    stack = Stack(settings).start()
    try:
        release_id = _through_review(ctx, names)
        view = _wait(ctx, release_id, timeout)
    finally:
        stack.stop()
    return _report(view, var, settings, json_out)


def _through_review(ctx, names: list[str]) -> int:  # type: ignore[no-untyped-def]
    from orchestrator.usecases import releases, review
    from orchestrator.usecases.unit_of_work import UnitOfWork

    with as_file(SAMPLE) as sample:
        data = parse_release({**yaml.safe_load(sample.read_text(encoding="utf-8")),
                              "channels": names})
        with UnitOfWork(ctx) as uow:
            release_id = releases.create(uow, data, "press", base=sample.parent)
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, release_id, "press")
    for signer in ("reviewer", "secrecy", "leader"):
        with UnitOfWork(ctx) as uow:
            review.approve(uow, release_id, signer, comment="同意发布")
    return release_id


def _wait(ctx, release_id: int, timeout: float) -> dict:  # type: ignore[no-untyped-def]
    from orchestrator.usecases import deliveries, releases
    from orchestrator.usecases.unit_of_work import UnitOfWork

    deadline = time.monotonic() + timeout
    while True:
        with UnitOfWork(ctx) as uow:
            release = releases.get_release(uow.session, release_id)
            view = releases.as_dict(uow.session, release)
            view["deliveries"] = [deliveries.as_dict(uow.session, d, with_attempts=False)
                                  for d in deliveries.for_release(uow.session, release_id)]
        held = any(d["state"] == "failed" for d in view["deliveries"])
        if view["state"] in FINAL or held or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


def _report(view: dict, var: Path, settings: Settings, json_out: bool) -> int:
    rows = [{k: d[k] for k in ("channel", "state", "remote_id", "url", "published_at",
                               "last_error")} for d in view["deliveries"]]
    ok = view["state"] == R.PUBLISHED and all(d["state"] == "published" for d in rows)
    if json_out:
        typer.echo(json.dumps({"release": view["id"], "state": view["state"],
                               "content_hash": view["content_hash"], "channels": rows,
                               "spread_ms": view["spread_ms"], "data_dir": str(var)},
                              ensure_ascii=False, indent=2))
        return 0 if ok else 1
    typer.echo(f"release #{view['id']} 《{view['title']}》 → {view['state']}")
    for d in rows:
        typer.echo(f"  {d['channel']:<14} {d['state']:<10} {d['remote_id'] or '-':<20} "
                   f"{d['url'] or '-'}  {d['published_at'] or ''}"
                   f"{'  ' + d['last_error'] if d['last_error'] else ''}")
    typer.echo(f"spread between first and last channel: {view['spread_ms']} ms")
    typer.echo(f"data kept in {var} (website pages under {settings.resolved_site_root})")
    return 0 if ok else 1
