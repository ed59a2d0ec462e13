"""Units (政府网站集约化): a tree of units; people, channels and releases belong to one, and
every role acts within its reach (谁发布谁审查: a unit signs only its own releases)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from orchestrator.api.app import create_app
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.store.models import ROOT_UNIT_ID, AuditEvent, ChannelInstance, Unit, User
from orchestrator.usecases import channels, releases, review, units, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.cli_runner import tongfa_in
from tests.conftest import release_input

# province (root) → two cities → a county of the first
TREE = (("gz", "广州市", None), ("sz", "深圳市", None), ("th", "天河区", "gz"))
# per unit: an author, the three signers, a channel admin, an auditor
STAFF = {
    unit: {
        f"{unit}-{role}": role
        for role in ("author", "reviewer", "secrecy", "approver", "channel_admin", "auditor")
    }
    for unit in ("gz", "sz", "th")
}


def _uow(ctx: Context) -> UnitOfWork:
    return UnitOfWork(ctx)


@pytest.fixture
def tree(ctx: Context) -> dict[str, str]:
    """The units, their people (name → API token) and one memory channel per unit."""
    tokens = {}
    with _uow(ctx) as uow:
        for code, name, parent in TREE:
            units.add_unit(uow, code, name, parent, "test")
    for unit, staff in STAFF.items():
        for name, role in staff.items():
            with _uow(ctx) as uow:
                tokens[name] = users.add_user(uow, name, [role], unit=unit)
        with _uow(ctx) as uow:
            channels.save_channel(
                uow, f"{unit}-site", "memory", {"account": unit}, {"token": "t"}, "test", unit=unit
            )
    with _uow(ctx) as uow:
        tokens["province-auditor"] = users.add_user(uow, "province-auditor", ["auditor"])
    return tokens


def _release(ctx: Context, unit: str, submit: bool = True) -> int:
    with _uow(ctx) as uow:
        rid = releases.create(
            uow, release_input(channels=[f"{unit}-site"], title=f"{unit} 通知"), f"{unit}-author"
        )
    if submit:
        with _uow(ctx) as uow:
            releases.submit(uow, rid, f"{unit}-author")
    return rid


def _api(ctx: Context, tokens: dict[str, str]) -> Any:
    client = TestClient(create_app(ctx))
    client.as_ = lambda who: {"Authorization": f"Bearer {tokens[who]}"}
    return client


# ------------------------------------------------------------------ signing


def test_a_reviewer_of_another_unit_cannot_sign_through_the_use_case(ctx, tree):
    rid = _release(ctx, "gz")
    for outsider in ("sz-reviewer", "th-reviewer"):  # a sibling city, a county below
        with _uow(ctx) as uow, pytest.raises(NotFound):
            review.approve(uow, rid, outsider)
    with _uow(ctx) as uow:
        assert review.approve(uow, rid, "gz-reviewer") == "in_review"
        assert [s["signer"] for s in releases.show(uow.session, rid, "gz-author")["signoffs"]] == [
            "gz-reviewer"
        ]


def test_a_reviewer_of_another_unit_cannot_sign_or_see_it_through_the_api(ctx, tree):
    rid = _release(ctx, "gz")
    api = _api(ctx, tree)
    refused = api.post(f"/api/v1/releases/{rid}/approve", json={}, headers=api.as_("sz-reviewer"))
    missing = api.post("/api/v1/releases/999999/approve", json={}, headers=api.as_("sz-reviewer"))
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    assert api.get(f"/api/v1/releases/{rid}", headers=api.as_("sz-reviewer")).status_code == 404
    assert rid not in [
        r["id"] for r in api.get("/api/v1/releases", headers=api.as_("sz-reviewer")).json()
    ]
    signed = api.post(f"/api/v1/releases/{rid}/approve", json={}, headers=api.as_("gz-reviewer"))
    assert signed.status_code == 200 and signed.json()["unit"] == "gz"
    assert signed.json()["origin"] is None and signed.json()["derived"] == []


def test_a_reviewer_of_another_unit_cannot_sign_in_the_console(ctx, tree, monkeypatch):
    from argon2 import PasswordHasher

    from tests.test_console import PASSWORD, signed_in

    monkeypatch.setattr(
        users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    for name in ("sz-reviewer", "gz-reviewer", "gz-author", "sz-channel_admin"):
        with _uow(ctx) as uow:
            users.set_password(uow, name, PASSWORD, "test")
    rid = _release(ctx, "gz")
    client, token = signed_in(ctx, "sz-reviewer")
    assert client.get(f"/console/review/{rid}").status_code == 404
    # the console flashes a missing release and goes back: the same as for one that is not
    for target in (rid, 999999):
        answer = client.post(f"/console/review/{target}/approve", data={"csrf": token})
        assert "no such release" in answer.text, target
    with _uow(ctx) as uow:
        assert releases.show(uow.session, rid, "gz-author")["signoffs"] == []
    client, token = signed_in(ctx, "gz-reviewer")
    page = client.get(f"/console/review/{rid}")
    assert page.status_code == 200 and "广州市（gz）" in page.text  # the unit is shown
    client, _ = signed_in(ctx, "gz-author")
    assert "广州市（gz）" in client.get(f"/console/press/{rid}").text
    assert "广州市" in client.get("/console/press").text
    compose = client.get("/console/press/new").text  # only their unit's channels to pick
    assert "gz-site" in compose and "sz-site" not in compose
    client, _ = signed_in(ctx, "sz-channel_admin")  # their unit's channels, with the unit
    listed = client.get("/console/channels").text
    assert "sz-site" in listed and "gz-site" not in listed
    assert client.get("/console/channels/gz-site/edit").status_code == 404


# ------------------------------------------------------------------ reach


def test_an_auditor_of_a_city_sees_its_counties_but_not_a_sibling_city(ctx, tree):
    mine, county, sibling = _release(ctx, "gz"), _release(ctx, "th"), _release(ctx, "sz")
    with _uow(ctx) as uow:
        _, seen = releases.visible_releases(uow.session, "gz-auditor")
        assert {r.id for r in seen} == {mine, county}
        assert releases.show(uow.session, county, "gz-auditor")["unit"] == "th"
        with pytest.raises(NotFound):
            releases.show(uow.session, sibling, "gz-auditor")
        with pytest.raises(NotFound):  # a county's auditor does not see its city's
            releases.show(uow.session, mine, "th-auditor")
        _, province = releases.visible_releases(uow.session, "province-auditor")
        assert {r.id for r in province} == {mine, county, sibling}
    api = _api(ctx, tree)
    listed = api.get("/api/v1/releases", headers=api.as_("gz-auditor")).json()
    assert sorted(r["unit"] for r in listed) == ["gz", "th"]
    assert api.get(f"/api/v1/releases/{sibling}", headers=api.as_("gz-auditor")).status_code == 404


def test_a_channel_admin_cannot_edit_pause_or_test_another_units_channel(ctx, tree):
    with _uow(ctx) as uow, pytest.raises(NotFound):
        channels.save_channel(
            uow,
            "gz-site",
            "memory",
            {"account": "x"},
            None,
            "sz-channel_admin",
            by="sz-channel_admin",
        )
    with _uow(ctx) as uow, pytest.raises(NotFound):
        channels.set_paused(uow, "gz-site", True, "sz-channel_admin", by="sz-channel_admin")
    with _uow(ctx) as uow:  # nor move one of theirs into a unit out of reach
        with pytest.raises(Exception, match="does not reach"):
            channels.save_channel(
                uow,
                "sz-site",
                "memory",
                {"account": "sz"},
                None,
                "sz-channel_admin",
                unit="gz",
                by="sz-channel_admin",
            )
    api = _api(ctx, tree)
    body = {"kind": "memory", "config": {"account": "taken"}}
    for call in (
        lambda: api.put("/api/v1/channels/gz-site", json=body, headers=api.as_("sz-channel_admin")),
        lambda: api.post("/api/v1/channels/gz-site/pause", headers=api.as_("sz-channel_admin")),
        lambda: api.post("/api/v1/channels/gz-site/test", headers=api.as_("sz-channel_admin")),
    ):
        assert call().status_code == 404
    with _uow(ctx) as uow:
        row = channels.get_channel(uow.session, "gz-site")
        assert row.config == {"account": "gz"} and not row.paused
    # their own unit's channel, and a new one joins their unit
    assert (
        api.put("/api/v1/channels/gz-site", json=body, headers=api.as_("gz-channel_admin")).json()[
            "unit"
        ]
        == "gz"
    )
    made = api.put("/api/v1/channels/th-weibo", json=body, headers=api.as_("th-channel_admin"))
    assert made.status_code == 200 and made.json()["unit"] == "th"
    listed = {
        c["name"] for c in api.get("/api/v1/channels", headers=api.as_("sz-channel_admin")).json()
    }
    assert listed == {"sz-site"}


def test_a_release_cannot_target_another_units_channel(ctx, tree):
    with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:
        releases.create(uow, release_input(channels=["gz-site", "sz-site"]), "gz-author")
    assert [f for f, _ in refused.value.problems] == ["channels[1]"]
    assert "sz-site" in refused.value.problems[0][1] and "gz-site" in refused.value.problems[0][1]
    with _uow(ctx) as uow:
        assert releases.list_releases(uow.session) == []
    rid = _release(ctx, "gz", submit=False)
    with _uow(ctx) as uow, pytest.raises(InvalidInput):  # nor gain one by an edit
        releases.edit(uow, rid, release_input(channels=["sz-site"]), "gz-author")
    with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:  # a co-author of their unit
        releases.create(
            uow, release_input(channels=["gz-site"], co_authors=["sz-author"]), "gz-author"
        )
    assert [f for f, _ in refused.value.problems] == ["co_authors[0]"]


def test_each_unit_signs_by_its_own_review_policy(ctx, tree):
    with _uow(ctx) as uow:
        units.edit_unit(uow, "sz", "test", review_policy='[{"role": "approver"}]')
    rid = _release(ctx, "sz")
    with _uow(ctx) as uow:
        assert review.approve(uow, rid, "sz-approver") == "approved"


# ------------------------------------------------------------------ the tree and its input


def test_rows_without_a_unit_belong_to_the_root(ctx, people, memory_channels):
    with _uow(ctx) as uow:
        rid = releases.create(uow, release_input(), "press")
        s = uow.session
        assert {u.unit_id for u in s.exec(select(User))} == {ROOT_UNIT_ID}
        assert {c.unit_id for c in s.exec(select(ChannelInstance))} == {ROOT_UNIT_ID}
        assert releases.show(s, rid, "press")["unit"] == "root"
        assert units.list_units(s) == [
            {
                "code": "root",
                "name": "本级单位",
                "parent": None,
                "path": ["root"],
                "review_policy": None,
            }
        ]


BAD = [
    (("gz2", "广州", "nowhere"), "parent"),
    (("GZ!", "广州", None), "code"),
    (("x" * 33, "广州", None), "code"),
    (("gz2", "广州\r\n伪造的一行", None), "name"),
    (("gz2", "长" * 101, None), "name"),
    (("gz2", "  ", None), "name"),
    (("gz", "又一个广州", None), "code"),  # the code exists
]


@pytest.mark.parametrize(("args", "field"), BAD)
def test_bad_unit_input_names_the_field_and_writes_nothing(ctx, args, field):
    with _uow(ctx) as uow:
        units.add_unit(uow, "gz", "广州市", None, "test")
    before = _snapshot(ctx)
    with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:
        units.add_unit(uow, *args, "test")
    assert [f for f, _ in refused.value.problems] == [field]
    assert _snapshot(ctx) == before


def test_a_unit_cannot_move_below_itself_and_the_root_has_no_parent(ctx, tree):
    before = _snapshot(ctx)
    for code, parent in (("gz", "th"), ("gz", "gz"), ("root", "gz")):
        with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:
            units.edit_unit(uow, code, "test", parent=parent)
        assert [f for f, _ in refused.value.problems] == ["parent"], (code, parent)
    with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:
        units.edit_unit(uow, "sz", "test", review_policy='[{"role": "nobody"}]')
    assert [f for f, _ in refused.value.problems] == ["review_policy"]
    assert _snapshot(ctx) == before
    with _uow(ctx) as uow:  # a move that makes no loop is fine, and audited
        units.edit_unit(uow, "th", "test", parent="sz")
        assert units.path_of(uow.session, units.get_unit(uow.session, "th").id) == (
            "root",
            "sz",
            "th",
        )


def test_a_person_of_an_unknown_unit_is_refused_naming_the_field(ctx):
    with _uow(ctx) as uow, pytest.raises(InvalidInput) as refused:
        users.add_user(uow, "someone", ["author"], unit="nowhere")
    assert [f for f, _ in refused.value.problems] == ["unit"]
    with _uow(ctx) as uow:
        assert users.list_users(uow.session) == []


def _snapshot(ctx: Context) -> tuple[Any, ...]:
    with _uow(ctx) as uow:
        s = uow.session
        return (
            [(u.code, u.name, u.parent_id, u.review_policy) for u in s.exec(select(Unit))],
            len(s.exec(select(AuditEvent)).all()),
        )


# ------------------------------------------------------------------ the command line


def test_units_people_channels_and_signing_through_the_cli(tmp_path):
    import json
    import os

    env = {
        **os.environ,
        "TONGFA_VAR_DIR": str(tmp_path / "var"),
        "TONGFA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }
    env.pop("TONGFA_BROKER_URL", None)

    tongfa = tongfa_in(env)

    assert tongfa("units", "add", "gz", "--name", "广州市").stdout.strip() == "root/gz"
    assert (
        tongfa("units", "add", "th", "--name", "天河区", "--parent", "gz").stdout.strip()
        == "root/gz/th"
    )
    assert tongfa("units", "add", "sz", "--name", "深圳市").stdout.strip() == "root/sz"
    refused = tongfa("units", "add", "x", "--name", "X", "--parent", "nowhere", ok=False)
    assert refused.stderr.startswith("refused: parent:")
    refused = tongfa("units", "edit", "gz", "--parent", "th", ok=False)
    assert refused.stderr.startswith("refused: parent:")
    listed = json.loads(tongfa("units", "list", "--json").stdout)
    assert [(u["code"], u["parent"]) for u in listed] == [
        ("root", None),
        ("gz", "root"),
        ("th", "gz"),
        ("sz", "root"),
    ]
    for name, role, unit in (
        ("press", "author", "gz"),
        ("li", "reviewer", "gz"),
        ("sz-li", "reviewer", "sz"),
    ):
        tongfa("users", "add", name, "--role", role, "--unit", unit)
    assert (
        "unit:" in tongfa("users", "add", "x", "--role", "author", "--unit", "no", ok=False).stderr
    )
    tongfa(
        "channels",
        "add",
        "gz-site",
        "--kind",
        "website",
        "--unit",
        "gz",
        "--config",
        json.dumps({"web_root": str(tmp_path / "var" / "site")}),
    )
    assert json.loads(tongfa("channels", "list", "--json").stdout)[0]["unit"] == "gz"
    release = tmp_path / "r.json"
    release.write_text(
        json.dumps(
            {
                "title": "关于冬季安全生产的通知",
                "body": "各区：请落实。",
                "channels": ["gz-site"],
                "metadata": {
                    "index_number": "1",
                    "issuing_body": "广州市人民政府办公厅",
                    "disclosure": "主动公开",
                },
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    rid = tongfa("release", "create", str(release), "--as", "press").stdout.strip()
    tongfa("release", "submit", rid, "--as", "press")
    refused = tongfa("review", "approve", rid, "--as", "sz-li", ok=False)
    missing = tongfa("review", "approve", "999999", "--as", "sz-li", ok=False)
    assert refused.stderr == missing.stderr
    assert (
        tongfa("review", "approve", rid, "--as", "li").stdout.strip()
        == f"release {rid} is in_review"
    )
    shown = json.loads(tongfa("release", "show", rid, "--as", "press", "--json").stdout)
    assert (shown["unit"], shown["origin"], shown["derived"]) == ("gz", None, [])
    assert [s["signer"] for s in shown["signoffs"]] == ["li"]


def test_a_channel_admin_sees_and_resends_only_their_units_failed_deliveries(ctx, tree):
    from orchestrator.usecases import deliveries
    from tests import fakes
    from tests.conftest import drain

    fakes.plan("gz", "publish", "permanent")
    rid = _release(ctx, "gz")
    for signer in ("gz-reviewer", "gz-secrecy", "gz-approver"):
        with _uow(ctx) as uow:
            review.approve(uow, rid, signer)
    drain(ctx)
    with _uow(ctx) as uow:
        assert deliveries.failed(uow.session, actor="sz-channel_admin") == []
        [failed] = deliveries.failed(uow.session, actor="gz-channel_admin")
    api = _api(ctx, tree)
    resend = f"/api/v1/deliveries/{failed['id']}/resend"
    assert api.post(resend, headers=api.as_("sz-channel_admin")).status_code == 404
    assert api.post(resend, headers=api.as_("gz-channel_admin")).status_code == 200


def test_open_integrity_alerts_are_seen_within_reach_only(ctx, tree):
    from orchestrator.store.models import Delivery, IntegrityAlert
    from tests.conftest import drain

    rid = _release(ctx, "th")
    for signer in ("th-reviewer", "th-secrecy", "th-approver"):
        with _uow(ctx) as uow:
            review.approve(uow, rid, signer)
    drain(ctx)
    with _uow(ctx) as uow:  # what a defacement check would leave behind
        delivery = uow.session.exec(select(Delivery).where(Delivery.release_id == rid)).one()
        uow.session.add(
            IntegrityAlert(
                delivery_id=delivery.id,
                release_id=rid,
                channel="th-site",
                diff="-原文\n+被篡改",
                found_sha256="0" * 64,
            )
        )
        uow.commit()
    api = _api(ctx, tree)
    seen = {
        who: [a["release_id"] for a in api.get("/api/v1/alerts", headers=api.as_(who)).json()]
        for who in (
            "th-channel_admin",
            "gz-auditor",
            "province-auditor",
            "sz-channel_admin",
            "sz-auditor",
            "gz-channel_admin",
        )
    }
    assert seen == {
        "th-channel_admin": [rid],
        "gz-auditor": [rid],
        "province-auditor": [rid],
        "sz-channel_admin": [],
        "sz-auditor": [],
        "gz-channel_admin": [],
    }
