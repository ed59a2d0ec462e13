"""Warm adapters: a worker process builds a channel's adapter once per channel configuration.

Building one means a registry lookup, decrypting the credentials and a new HTTP session;
publishing (stage, go-live, confirm) must not pay for that at every step, and a changed
configuration (credentials rotated, endpoint moved) must never be served a stale adapter.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections import Counter
from typing import Any

import pytest
from sqlmodel import select

from channels import registry
from channels.contract import JSON, Receipt
from orchestrator.store import secrets
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import channels
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain, release_input


class ConfirmingAdapter(fakes.MemoryAdapter):
    """A memory channel whose platform takes a post first and confirms it later."""

    kind = "confirming"
    capabilities = dataclasses.replace(fakes.MemoryAdapter.capabilities, async_publish=True)

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        taken = super().publish(payload, staged, key)
        return dataclasses.replace(taken, details={"confirmed": False})

    def confirm(self, receipt: Receipt) -> Receipt | None:
        fakes.CALLS[(self.config.account, "confirm")] += 1
        return dataclasses.replace(receipt, details={"confirmed": True})


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the channel registry and the secrets store are reached, whichever module
    imported the registry's lookup by name."""
    seen: Counter[str] = Counter()
    lookup, decrypt = registry.adapter_class, secrets.decrypt

    def counted_lookup(kind: str) -> Any:
        seen["registry"] += 1
        return lookup(kind)

    def counted_decrypt(settings: Any, token: str) -> Any:
        seen["secrets"] += 1
        return decrypt(settings, token)

    for module in list(sys.modules.values()):
        if getattr(module, "adapter_class", None) is lookup:
            monkeypatch.setattr(module, "adapter_class", counted_lookup)
    monkeypatch.setattr(secrets, "decrypt", counted_decrypt)
    return seen


@pytest.fixture
def confirming(ctx: Context, people: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(registry.loaded, "confirming", ConfirmingAdapter)
    save(ctx, {"account": "gamma"}, {"token": "secret-token-gamma"})
    return "gamma"


def save(ctx: Context, config: dict[str, Any], credentials: dict[str, Any] | None) -> None:
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "gamma", "confirming",
                              {**config, "retry": {"base_seconds": 0.0}}, credentials, "admin_ops")


def approved(ctx: Context) -> int:
    from orchestrator.usecases import releases

    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=["gamma"]), "press")
    assert approve_all(ctx, rid) == "approved"
    return rid


def published(ctx: Context, rid: int) -> bool:
    with UnitOfWork(ctx) as uow:
        release = uow.session.get(Release, rid)
        states = {d.state for d in uow.session.exec(
            select(Delivery).where(Delivery.release_id == rid))}
        return release is not None and release.state == "published" and states == {"published"}


def test_publishing_builds_the_adapter_once_per_channel_configuration(
        ctx: Context, confirming: str, counted: Counter[str]) -> None:
    rid = approved(ctx)
    counted.clear()  # approval renders the payloads; publishing is what is counted
    drain(ctx)  # stage, go live, confirm
    assert published(ctx, rid)
    assert fakes.CALLS[("gamma", "confirm")] == 1  # confirm ran, as a step of its own
    assert counted == {"registry": 1, "secrets": 1}

    second = approved(ctx)  # the same worker process publishes again on the same config
    counted.clear()
    drain(ctx)
    assert published(ctx, second)
    assert counted == {}


def test_a_changed_channel_configuration_gets_a_fresh_adapter(
        ctx: Context, confirming: str, counted: Counter[str]) -> None:
    first = approved(ctx)
    drain(ctx)
    assert [p["key"] for p in fakes.posts("gamma")] == [f"tongfa-{first}-r1-gamma"]

    save(ctx, {"account": "gamma-2"}, None)  # the account moved; credentials kept
    rid = approved(ctx)
    counted.clear()
    drain(ctx)
    assert published(ctx, rid)
    assert [p["key"] for p in fakes.posts("gamma-2")] == [f"tongfa-{rid}-r1-gamma"]
    assert counted == {"registry": 1, "secrets": 1}

    save(ctx, {"account": "gamma-2"}, {"token": "rotated"})  # credentials rotated
    rid = approved(ctx)
    counted.clear()
    drain(ctx)
    assert published(ctx, rid)
    assert counted == {"registry": 1, "secrets": 1}


def test_a_forked_worker_never_shares_its_parents_connections(
        ctx: Context, confirming: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with UnitOfWork(ctx) as uow:
        row = channels.get_channel(uow.session, "gamma")
    parent = ctx.adapters.adapter(ctx.settings, row)
    assert ctx.adapters.adapter(ctx.settings, row) is parent  # warm within a process
    with monkeypatch.context() as child:
        child.setattr(os, "getpid", lambda: -1)  # as in a pool process forked after warming
        assert ctx.adapters.adapter(ctx.settings, row) is not parent


class ConnectingAdapter(fakes.MemoryAdapter):
    """A memory channel that says when it opens its connection and when it calls."""

    kind = "connecting"
    events: list[tuple[str, int]] = []

    def connect(self) -> None:
        self.events.append(("connect", threading.get_ident()))

    def stage(self, payload: JSON, key: str) -> JSON:
        self.events.append(("stage", threading.get_ident()))
        return super().stage(payload, key)

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        self.events.append(("publish", threading.get_ident()))
        return super().publish(payload, staged, key)


class CountedBarrier(threading.Barrier):
    def wait(self, timeout: float | None = None) -> int:
        ConnectingAdapter.events.append(("barrier", threading.get_ident()))
        return super().wait(timeout)


def test_every_call_leaves_the_barrier_with_its_connection_open(
        ctx: Context, people: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.usecases import releases

    monkeypatch.setitem(registry.loaded, "connecting", ConnectingAdapter)
    monkeypatch.setattr(threading, "Barrier", CountedBarrier)
    ConnectingAdapter.events = []
    for name in ("delta", "epsilon"):
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, "connecting", {"account": name}, {}, "admin_ops")
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=["delta", "epsilon"]), "press")
    approve_all(ctx, rid)
    drain(ctx)
    assert published(ctx, rid)
    calls = [(what, thread) for what, thread in ConnectingAdapter.events
             if what in ("stage", "publish")]
    assert len(calls) == 4  # two channels, staged then published
    for what, thread in calls:
        mine = [seen for seen, t in ConnectingAdapter.events if t == thread]
        assert mine[mine.index(what) - 2:mine.index(what)] == ["connect", "barrier"], mine
