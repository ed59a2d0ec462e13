"""`tongfa units`: the organisational units (政府网站集约化), a tree under the root unit."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.usecases import units
from orchestrator.usecases.unit_of_work import UnitOfWork

units_app = typer.Typer(
    help="Organisational units: the province office, departments, cities, counties.",
    no_args_is_help=True,
)


ReviewPolicy = Annotated[
    str | None,
    typer.Option(
        help="its own review steps, JSON as TONGFA_REVIEW_POLICY, e.g. "
        '[{"role": "reviewer"}, {"role": "approver"}]; "" for the installation\'s'
    ),
]


@units_app.command("add")
def units_add(
    code: str,
    name: Annotated[str, typer.Option(help="the unit's name, e.g. 广州市人民政府办公厅")],
    parent: Annotated[
        str | None, typer.Option(help="the code of the unit above it (default: the root unit)")
    ] = None,
    review_policy: ReviewPolicy = None,
) -> None:
    """Add a unit; prints its path from the root (codes joined by /)."""
    from orchestrator.cli.main import context, refusals

    @refusals
    def run() -> None:
        with UnitOfWork(context()) as uow:
            row = units.add_unit(uow, code, name, parent, "cli", review_policy)
            typer.echo("/".join(units.path_of(uow.session, row.id)))

    run()


@units_app.command("edit")
def units_edit(
    code: str,
    name: Annotated[str | None, typer.Option(help="a new name")] = None,
    parent: Annotated[str | None, typer.Option(help="move it below this unit")] = None,
    review_policy: ReviewPolicy = None,
) -> None:
    """Rename a unit, move it, or set its review steps; prints its path."""
    from orchestrator.cli.main import context, refusals

    @refusals
    def run() -> None:
        with UnitOfWork(context()) as uow:
            row = units.edit_unit(
                uow, code, "cli", name=name, parent=parent, review_policy=review_policy
            )
            typer.echo("/".join(units.path_of(uow.session, row.id)))

    run()


@units_app.command("list")
def units_list(
    json_out: Annotated[
        bool, typer.Option("--json", help="machine-readable output (docs/cli.md)")
    ] = False,
) -> None:
    """Every unit, each under its parent."""
    from orchestrator.cli.main import context, emit

    with UnitOfWork(context()) as uow:
        rows = units.list_units(uow.session)
    if json_out:
        return emit(rows)
    for row in rows:
        typer.echo(f"{'  ' * (len(row['path']) - 1)}{row['code']:<16} {row['name']}")
