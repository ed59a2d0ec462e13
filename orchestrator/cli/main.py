"""`tongfa`: the command line. Thin: parse, call one use case, print.

A refused action exits 1 with a one-line reason on stderr.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from orchestrator.cli import audit_log
from orchestrator.cli.units import units_app
from orchestrator.domain.clock import instant
from orchestrator.domain.errors import Refused
from orchestrator.domain.release import parse_release
from orchestrator.domain.spreadsheet import safe_cell
from orchestrator.settings import get_settings
from orchestrator.usecases import audit, channels, deliveries, releases, review, units, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

app = typer.Typer(help="同发 tongfa — one approved release, every channel, the same moment.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
release_app = typer.Typer(help="Write, edit, submit and show releases.", no_args_is_help=True)
review_app = typer.Typer(help="Sign off or reject a release.", no_args_is_help=True)
users_app = typer.Typer(help="People and their roles.", no_args_is_help=True)
channels_app = typer.Typer(help="Channel instances.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
delivery_app = typer.Typer(help="A channel admin's decisions on one delivery.",
                           no_args_is_help=True)
audit_app.registered_commands += audit_log.commands.registered_commands
for sub, name in ((release_app, "release"), (review_app, "review"), (users_app, "users"),
                  (channels_app, "channels"), (audit_app, "audit"), (db_app, "db"),
                  (delivery_app, "delivery")):
    app.add_typer(sub, name=name)
app.add_typer(units_app, name="units")

As = Annotated[str, typer.Option("--as", help="the user acting")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output (docs/cli.md)")]


def refusals(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a refused action into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Refused as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def context() -> Context:
    from orchestrator.bootstrap import installed_context

    return dataclasses.replace(installed_context(get_settings()), origin=cli_origin())


def cli_origin() -> dict[str, str]:
    """Who ran the command, for every audit event it writes (beside --as). The account the
    process runs as, from the password database (not $USER, which anyone sets); and
    the person behind sudo, when sudo says so."""
    import pwd

    try:
        os_user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container's uid without a passwd entry
        os_user = f"uid {os.getuid()}"
    origin = {"via": "cli", "os_user": os_user}
    if os.environ.get("SUDO_USER"):
        origin["sudo_user"] = os.environ["SUDO_USER"]
    return origin


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def load_file(path: Path) -> Any:
    if not path.is_file():
        raise Refused(f"no such file: {path}")
    try:  # UnicodeDecodeError is a ValueError too: a file that is not UTF-8 is refused
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise Refused(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                      f"{str(exc).splitlines()[0]}") from None


# ------------------------------------------------------------------ running


@app.command()
def serve(workers: int | None = typer.Option(None, help="worker processes")) -> None:
    """Start the whole system: API, website at /site/, sandboxes, workers, scheduler."""
    from orchestrator.cli import seed
    from orchestrator.cli.stack import Stack

    settings = get_settings()
    ctx = context()
    with UnitOfWork(ctx) as uow:
        fresh = not channels.list_channels(uow.session)
    if fresh:
        seed.seed_channels(ctx, f"http://{settings.host}:{settings.port}")
        token_file = settings.var_dir / "demo-tokens.txt"
        seed.write_tokens(token_file, seed.seed_users(ctx))
        typer.echo(f"first start: demo channels and people created; their API tokens: {token_file}")
    stack = Stack(settings, workers).start()
    typer.echo(f"tongfa is up: API {stack.url}/docs · website {stack.url}/site/ · "
               f"{stack.workers} worker process(es), logs in {settings.var_dir / 'logs'}. "
               "Ctrl-C stops.")
    stack.wait()


@app.command()
def worker(queues: str = "urgent,normal,integrity", concurrency: int = 2, name: str = "w") -> None:
    """Run one Celery worker process (production: one per host or container)."""
    import os

    from orchestrator.cli.stack import worker_command

    os.execv(sys.executable, worker_command(name, queues, concurrency))


@app.command()
def scheduler() -> None:
    """Run the scheduler: due go-lives and the reaper (exactly one per installation)."""
    import time

    from orchestrator.observability import configure_logging
    from orchestrator.usecases import scheduler as loop

    configure_logging(get_settings().log_level)

    def sleep(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    loop.run(context(), sleep)


@app.command()
def demo(
    json_out: Json = False,
    keep: Path | None = typer.Option(None, help="data directory to use and keep"),
    timeout: float = typer.Option(60.0, help="seconds to wait for every channel"),
) -> None:
    """Run one sample release through review to every channel, print the outcome, exit."""
    from orchestrator.cli.demo import run_demo

    raise typer.Exit(run_demo(json_out, keep, timeout))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (also done automatically on first use)."""
    from orchestrator.store.db import upgrade

    upgrade(get_settings().resolved_database_url, revision)
    typer.echo(f"database at {revision}")


# ------------------------------------------------------------------ releases


@release_app.command("create")
@refusals
def release_create(file: Path, as_: As) -> None:
    """Create a release from a YAML/JSON file; prints the new id alone."""
    data = parse_release(load_file(file))
    with UnitOfWork(context()) as uow:
        typer.echo(releases.create(uow, data, as_, base=file.parent))


@release_app.command("edit")
@refusals
def release_edit(release_id: int, file: Path, as_: As) -> None:
    """Replace a release's content; any sign-off so far is void."""
    data = parse_release(load_file(file))
    with UnitOfWork(context()) as uow:
        releases.edit(uow, release_id, data, as_, base=file.parent)
        release = releases.get_release(uow.session, release_id)
        typer.echo(f"release {release_id} is {release.state} (revision {release.revision})")


@release_app.command("submit")
@refusals
def release_submit(release_id: int, as_: As) -> None:
    """Send a release to review; prints its content hash."""
    with UnitOfWork(context()) as uow:
        typer.echo(releases.submit(uow, release_id, as_))


@release_app.command("show")
@refusals
def release_show(release_id: int, as_: As, json_out: Json = False) -> None:
    """A release as the person named by --as may see it (docs/security.md)."""
    with UnitOfWork(context()) as uow:
        view = releases.show(uow.session, release_id, as_)
    if json_out:
        return emit(view)
    typer.echo(f"#{view['id']} {view['title']}\nunit: {view['unit']}\n"
               f"state: {view['state']} {view['state_reason']}\n"
               f"content hash: {view.get('content_hash', '-')}\n"
               f"channels: {', '.join(view['channels'])}")
    if view.get("reschedule"):
        typer.echo(f"go-live move to {view['reschedule']['to'] or 'as soon as ready'} asked by "
                   f"{view['reschedule']['requested_by']}: waits for an approver's signature")
    for hold in view.get("held_by", []):
        typer.echo(f"held by {hold['channel']}: {hold['message']}")
    for s in view.get("signoffs", []):
        typer.echo(f"  step {s['step']} {s['role']}: {s['decision']} by {s['signer']}"
                   f"{' (void)' if s['voided'] else ''} — {s['content_hash'][:16]}")


@release_app.command("check")
@refusals
def release_check(release_id: int, as_: As, json_out: Json = False) -> None:
    """Pre-publish checks of what every channel would show: blocks and flags, with where.

    Exits 1 when a finding blocks (submit would refuse it), 0 otherwise.
    """
    with UnitOfWork(context()) as uow:
        found = releases.check(uow, release_id, as_)
    if json_out:
        emit(found)
    else:
        for f in found:
            typer.echo(f"{f['severity'].upper():<5} {f['where']:<28} {f['message']}")
        if not found:
            typer.echo("no findings")
    if any(f["severity"] == "block" for f in found):
        raise typer.Exit(1)


@release_app.command("withdraw")
@refusals
def release_withdraw(release_id: int, as_: As, reason: str = typer.Option(...)) -> None:
    """Take a published release down on every channel (approver)."""
    from orchestrator.usecases import corrections

    with UnitOfWork(context()) as uow:
        count = corrections.withdraw(uow, release_id, as_, reason)
    typer.echo(f"release {release_id} withdrawn; {count} channel(s) being taken down")


@release_app.command("force-go-live")
@refusals
def release_force(release_id: int, as_: As, reason: str = typer.Option(...)) -> None:
    """Go live without the channels that hold it (approver; audited with the reason)."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        left = golive.force_go_live(uow, release_id, as_, reason)
    typer.echo(f"release {release_id} goes live without: {', '.join(left) or 'none'}")


@release_app.command("plan")
@refusals
def release_plan(release_id: int, as_: As) -> None:
    """How each channel will carry out a correction (更正)."""
    from orchestrator.usecases import corrections

    ctx = context()
    with UnitOfWork(ctx) as uow:
        view = corrections.as_plan_view(ctx.settings, uow.session, release_id, as_)
    for step in view["plan"]:
        typer.echo(f"{step['channel']:<16} {step['kind']:<10} {step['strategy']}")


@release_app.command("schedule")
@refusals
def release_schedule(
    release_id: int, as_: As,
    at: Annotated[str | None, typer.Option(
        help="go-live time, e.g. 2026-11-29T09:00 (Beijing time) or with its zone, "
             "2026-11-29T09:00:00+08:00; omit: when ready")] = None,
) -> None:
    """Set the go-live time; after approval this asks an approver to sign the new time."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        state = golive.schedule(uow, release_id, instant(at, "at"), as_)
        pending = releases.get_release(uow.session, release_id).reschedule_by is not None
    typer.echo(f"release {release_id}: go-live move asked; nothing goes out until an approver "
               "signs it" if pending else f"release {release_id} is {state}")


@release_app.command("reschedule")
@refusals
def release_reschedule(
    release_id: int, as_: As,
    approve: Annotated[bool, typer.Option("--approve/--refuse",
                                          help="sign the new go-live time, or refuse it")] = True,
    comment: str = typer.Option("", help="the reason (needed to refuse)"),
) -> None:
    """An approver signs (or refuses) a go-live time asked for after approval."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        state = golive.sign_reschedule(uow, release_id, as_, approve, comment)
    typer.echo(f"release {release_id} is {state}" + ("" if approve else " (move refused)"))


@release_app.command("hold")
@refusals
def release_hold(release_id: int, as_: As) -> None:
    """Stop a go-live that waits; only a signed reschedule starts it again."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        golive.hold(uow, release_id, as_)
    typer.echo(f"release {release_id} held")


@release_app.command("consent")
@refusals
def release_consent(
    release_id: int, as_: As,
    accept: Annotated[bool, typer.Option("--accept/--refuse",
                                         help="let it join your go-live group, or refuse")] = True,
    comment: str = typer.Option("", help="the reason (needed to refuse)"),
) -> None:
    """The owner of a go-live group lets a release join it (or refuses it)."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        status = golive.consent_to_group(uow, release_id, as_, accept, comment)
    typer.echo(f"release {release_id}: {status}")


@release_app.command("group-remove")
@refusals
def release_group_remove(
    release_id: int, as_: As,
    comment: str = typer.Option(..., help="the reason (recorded in the audit trail)"),
) -> None:
    """The owner of a go-live group takes a consented release out of it again."""
    from orchestrator.usecases import golive

    with UnitOfWork(context()) as uow:
        status = golive.remove_from_group(uow, release_id, as_, comment)
    typer.echo(f"release {release_id}: {status}")


@app.command("preview")
@refusals
def preview(file: Path, kind: str = typer.Option(..., help="adapter kind"),
            format: str | None = typer.Option(None, help="document format")) -> None:
    """Print exactly what an adapter kind would send for a release file."""
    from orchestrator.cli.preview import preview_file

    typer.echo(preview_file(context(), file, load_file(file), kind, format))


# ------------------------------------------------------------------ review


@review_app.command("approve")
@refusals
def review_approve(release_id: int, as_: As, comment: str = "") -> None:
    with UnitOfWork(context()) as uow:
        typer.echo(f"release {release_id} is {review.approve(uow, release_id, as_, comment)}")


@review_app.command("reject")
@refusals
def review_reject(release_id: int, as_: As, comment: str = typer.Option(..., help="the reason")) -> None:
    with UnitOfWork(context()) as uow:
        review.reject(uow, release_id, as_, comment)
        typer.echo(f"release {release_id} is rejected")


# ------------------------------------------------------------------ deliveries, audit


@app.command("deliveries")
@refusals
def list_deliveries(release_id: int, as_: As, json_out: Json = False) -> None:
    """Where a release went: one line per channel."""
    with UnitOfWork(context()) as uow:
        rows = [deliveries.as_dict(uow.session, d)
                for d in deliveries.for_release(uow.session, release_id, actor=as_)]
    if json_out:
        return emit(rows)
    for d in rows:
        typer.echo(f"{d['channel']:<16} {d['state']:<12} {d['remote_id'] or '-':<14} "
                   f"{d['url'] or '-'}  {d['published_at'] or ''}"
                   f"{'  ' + d['last_error'] if d['last_error'] else ''}")


@delivery_app.command("decisions")
@refusals
def delivery_decisions(as_: As, json_out: Json = False) -> None:
    """Deliveries that need a channel admin's decision, newest first."""
    with UnitOfWork(context()) as uow:
        rows = deliveries.needing_decision(uow.session, actor=as_)
    if json_out:
        return emit(rows)
    for d in rows:
        typer.echo(f"delivery {d['id']} release {d['release_id']} on {d['channel']} "
                   f"after {d['attempts']} attempts: {d['error_code'] or '-'} {d['error'] or ''}")
    if not rows:
        typer.echo("no delivery needs a decision")


@delivery_app.command("resend")
@refusals
def delivery_resend(delivery_id: int, as_: As) -> None:
    """Send again with a fresh retry budget: a failed delivery, or one that needs a decision
    and did not go out."""
    from orchestrator.usecases import recovery

    with UnitOfWork(context()) as uow:
        recovery.resend(uow, delivery_id, as_)
    typer.echo(f"delivery {delivery_id} re-sent")


@delivery_app.command("mark-published")
@refusals
def delivery_mark_published(delivery_id: int, as_: As, url: str = typer.Option(...),
                            note: str = typer.Option("")) -> None:
    """A delivery that needs a decision did go out: where it is live (an https URL on the
    channel's own platform)."""
    from orchestrator.usecases import recovery

    with UnitOfWork(context()) as uow:
        recovery.mark_published(uow, delivery_id, as_, url, note)
    typer.echo(f"delivery {delivery_id} published at {url}")


@delivery_app.command("cancel")
@refusals
def delivery_cancel(delivery_id: int, as_: As, reason: str = typer.Option(...)) -> None:
    """Give up a failed or undecided delivery of a release already live (audited with the
    reason); before go-live an approver leaves a channel out (release force-go-live)."""
    from orchestrator.usecases import recovery

    with UnitOfWork(context()) as uow:
        recovery.cancel(uow, delivery_id, as_, reason)
    typer.echo(f"delivery {delivery_id} cancelled")


@app.command("alerts")
def open_alerts(json_out: Json = False) -> None:
    """Open alerts for a person: deliveries that need a decision, releases held by a channel."""
    from orchestrator.usecases import alerts

    with UnitOfWork(context()) as uow:
        rows = [alerts.as_dict(a) for a in alerts.open_alerts(uow.session)]
    if json_out:
        return emit(rows)
    for a in rows:
        typer.echo(f"#{a['id']} {a['kind']} release {a['release_id']}"
                   f"{' on ' + a['channel'] if a['channel'] else ''} ({a['raised_at']}): "
                   f"{a['message']}")
    if not rows:
        typer.echo("no open alerts")


@audit_app.command("query")
@refusals
def audit_query(
    release: int | None = None, channel: str | None = None, actor: str | None = None,
    action: str | None = None,
    since: Annotated[str | None, typer.Option(help="e.g. 2026-11-29T09:00 (Beijing time)")] = None,
    until: Annotated[str | None, typer.Option(help="the same; events before it")] = None,
    json_out: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """The audit trail, filtered, oldest first; --json or --csv export streams at any size."""
    rows = audit.export(context().engine, release_id=release, channel=channel, actor=actor,
                        action=action, since=instant(since, "since"),
                        until=instant(until, "until"))
    if json_out:  # a JSON array, written as it is read
        sys.stdout.write("[")
        for i, row in enumerate(rows):
            sys.stdout.write(("," if i else "") + "\n" + json.dumps(row, ensure_ascii=False))
        sys.stdout.write("\n]\n")
        return
    if csv_out:
        writer = csv.DictWriter(sys.stdout, fieldnames=AUDIT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: safe_cell(json.dumps(v, ensure_ascii=False)
                                          if isinstance(v, dict) else v)
                             for k, v in row.items()})
        return
    for r in rows:
        typer.echo(f"{r['at']} {r['actor']:<10} {r['action']:<26} {r['subject_type']}:"
                   f"{r['subject_id']} {json.dumps(r['after'], ensure_ascii=False) if r['after'] else ''}")


@app.command("integrity")
def integrity_check(json_out: Json = False) -> None:
    """Compare everything live with what was approved now; exit 1 on any open alert."""
    from orchestrator.usecases import integrity

    ctx = context()
    integrity.check(ctx, every_seconds=0, limit=100_000)
    alerts = integrity.open_alerts(ctx)
    if json_out:
        emit(alerts)
    for alert in [] if json_out else alerts:
        typer.echo(f"ALERT #{alert['id']} release {alert['release_id']} on {alert['channel']} "
                   f"({alert['detected_at']}):\n{alert['diff']}")
    if not json_out and not alerts:
        typer.echo("every published item shows what was approved")
    if alerts:
        raise typer.Exit(1)


report_app = typer.Typer(help="Reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("assessment")
@refusals
def report_assessment(
    quarter: str = typer.Option(..., help="e.g. 2026Q4"),
    csv_out: Annotated[bool, typer.Option("--csv")] = False,
    svg: Path | None = typer.Option(None, help="also write a bar chart here"),
) -> None:
    """考核: per department, per channel — published, median approval→live, failures, corrections."""
    from orchestrator.usecases import report, transparency

    ctx = context()
    transparency.checkpoint(ctx)  # the figures rest on approvals the log has just signed
    with UnitOfWork(ctx) as uow:
        rows = report.assessment(uow.session, quarter)
        cp = transparency.latest(uow.session)
    stamp = (f"审计日志检查点：{cp.tree_size} 条，根哈希 {cp.root_hash}" if cp
             else "审计日志尚无检查点")
    if svg is not None:
        svg.write_text(report.svg_chart(rows, f"{quarter} 各部门各渠道发布数（检查点 "
                                              f"{cp.tree_size if cp else '-'}）"),
                       encoding="utf-8")
    if csv_out:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(report.COLUMNS))
        writer.writeheader()
        writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
        return
    typer.echo(f"{'部门':<20}{'渠道':<16}{'发布':>6}{'审批→上线中位(秒)':>18}{'失败':>6}{'更正':>6}")
    for r in rows:
        median = "-" if r["median_approval_to_live_s"] is None else r["median_approval_to_live_s"]
        typer.echo(f"{r['department']:<20}{r['channel']:<16}{r['published']:>6}{median!s:>18}"
                   f"{r['failures']:>6}{r['corrections']:>6}")
    typer.echo(stamp)


AUDIT_FIELDS = ["id", "at", "actor", "action", "subject_type", "subject_id", "release_id",
                "channel", "before", "after", "detail", "prev_hash", "hash"]


# ------------------------------------------------------------------ users, channels


UnitCode = Annotated[str | None, typer.Option(
    "--unit", help="the code of the unit it belongs to (tongfa units list); new: the root")]
ExpiresDays = Annotated[int | None, typer.Option(
    "--expires-days", help="days the token is valid (default: TONGFA_API_TOKEN_DAYS, 90)")]


@users_app.command("add")
@refusals
def users_add(name: str, role: list[str] = typer.Option(..., "--role", help="repeatable"),
              expires_days: ExpiresDays = None, unit: UnitCode = None) -> None:
    """Add a person (or roles to one); prints a new API token, shown only once."""
    with UnitOfWork(context()) as uow:
        typer.echo(users.add_user(uow, name, role, actor="cli", expires_days=expires_days,
                                  unit=unit))


@users_app.command("new-token")
@refusals
def users_new_token(name: str, label: str = typer.Option("", help="what the token is for"),
                    expires_days: ExpiresDays = None) -> None:
    """Another API token for a person; prints it, shown only once."""
    with UnitOfWork(context()) as uow:
        typer.echo(users.new_token(uow, name, "cli", label=label, expires_days=expires_days))


@users_app.command("tokens")
@refusals
def users_tokens(name: str, json_out: Json = False) -> None:
    """A person's API tokens by id (the token's first characters): state, expiry, last use."""
    with UnitOfWork(context()) as uow:
        rows = users.list_tokens(uow.session, name)
    if json_out:
        return emit(rows)
    for t in rows:
        typer.echo(f"{t['id']:<16} {t['state']:<8} expires {t['expires_at']}  "
                   f"last used {t['last_used_at'] or 'never'}  {t['label']}")


@users_app.command("revoke-token")
@refusals
def users_revoke_token(token_id: str) -> None:
    """Revoke an API token by its id (see `tongfa users tokens NAME`)."""
    with UnitOfWork(context()) as uow:
        owner = users.revoke_token(uow, token_id, "cli")
    typer.echo(f"token {token_id} of {owner} revoked")


@users_app.command("roles")
@refusals
def users_roles(
    name: str,
    add: list[str] = typer.Option([], "--add", help="repeatable"),
    remove: list[str] = typer.Option([], "--remove", help="repeatable"),
    set_: list[str] = typer.Option([], "--set", help="exactly these roles (repeatable)"),
) -> None:
    """Show a person's roles, or add, remove or set them; prints the roles now held."""
    with UnitOfWork(context()) as uow:
        if add or remove or set_:
            roles = users.change_roles(uow, name, "cli", add=add, remove=remove,
                                       exact=set_ or None)
        else:
            roles = list(users.get_user(uow.session, name, disabled_ok=True).roles)
    typer.echo(f"{name}: {', '.join(roles)}")


@users_app.command("disable")
@refusals
def users_disable(name: str) -> None:
    """Disable a person: API tokens refused, console sessions ended, no action allowed."""
    with UnitOfWork(context()) as uow:
        users.set_disabled(uow, name, True, "cli")
    typer.echo(f"{name} is disabled")


@users_app.command("enable")
@refusals
def users_enable(name: str) -> None:
    """Enable a disabled person again (their unexpired, unrevoked tokens work again)."""
    with UnitOfWork(context()) as uow:
        users.set_disabled(uow, name, False, "cli")
    typer.echo(f"{name} is enabled")


@users_app.command("passwd")
@refusals
def users_passwd(name: str, password: str = typer.Option(..., prompt=True, hide_input=True,
                                                         confirmation_prompt=True)) -> None:
    """Set the console password of a person (ends their console sessions)."""
    with UnitOfWork(context()) as uow:
        users.set_password(uow, name, password, actor="cli")
    typer.echo(f"password of {name} set")


@users_app.command("list")
def users_list() -> None:
    with UnitOfWork(context()) as uow:
        for user in users.list_users(uow.session):
            typer.echo(f"{user.name:<16} {units.code_of(uow.session, user.unit_id):<12} "
                       f"{','.join(user.roles)}"
                       f"{'  (disabled)' if user.disabled else ''}")


@channels_app.command("list")
def channels_list(json_out: Json = False) -> None:
    with UnitOfWork(context()) as uow:
        rows = [channels.public_view(uow.session, c) for c in channels.list_channels(uow.session)]
    if json_out:
        return emit(rows)
    for c in rows:
        flag = " CREDENTIALS REJECTED" if c["credentials_rejected"] else ""
        typer.echo(f"{c['name']:<16} {c['unit']:<12} {c['kind']:<10} {json.dumps(c['config'], ensure_ascii=False)}{flag}")


@channels_app.command("kinds")
def channels_kinds(json_out: Json = False) -> None:
    """The installed channel kinds, with the package and version that provide each; exits 1
    when one failed to load (its line says why; the others work)."""
    from channels.registry import installed

    found = installed()
    if json_out:
        emit([k.to_json() for k in found])
    else:
        for k in found:
            typer.echo(f"{k.name:<12} {k.package or '-'} {k.version or '-'}  {k.target}"
                       + (f"  BROKEN: {k.problem}" if k.problem else ""))
    if any(k.problem for k in found):
        raise typer.Exit(1)


@channels_app.command("add")
@refusals
def channels_add(
    name: str, kind: str = typer.Option(...),
    config: str = typer.Option("{}", help="JSON, or a YAML/JSON file"),
    credentials: str | None = typer.Option(None, help="JSON, or a YAML/JSON file"),
    as_: As = "cli", unit: UnitCode = None,
) -> None:
    """Add or replace a channel instance; credentials are stored encrypted."""
    with UnitOfWork(context()) as uow:
        creds = _json_or_file(credentials) if credentials is not None else None
        channels.save_channel(uow, name, kind, _json_or_file(config), creds, as_, unit=unit)
        typer.echo(f"channel {name} saved")


@channels_app.command("test")
@refusals
def channels_test(name: str, as_: As = "cli") -> None:
    with UnitOfWork(context()) as uow:
        ok, message = channels.test_channel(uow, name, as_)
    typer.echo(f"{name}: {'ok' if ok else 'FAILED'} — {message}")
    if not ok:
        raise typer.Exit(1)


def _json_or_file(value: str) -> dict[str, Any]:
    path = Path(value)
    data = load_file(path) if path.suffix in (".json", ".yaml", ".yml") else json.loads(value)
    if not isinstance(data, dict):
        raise Refused("config and credentials must be a mapping")
    return data


if __name__ == "__main__":
    app()
