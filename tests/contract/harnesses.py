"""One harness per adapter kind: how to build it against a real local counterpart,
how to see from the channel's side whether something is live, and how to make the
channel fail. A new adapter of tongfa's joins the kit by adding a harness here; a plugin's
own tests subclass channels.contract_kit.ContractSuite the same way (docs/adapters.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from channels.contract import ChannelAdapter, Receipt
from channels.contract_kit import Harness, aware, view  # noqa: F401  (the kit's, re-exported)


@contextmanager
def website(tmp_path: Path) -> Iterator[Harness]:
    root = tmp_path / "site"

    def make() -> ChannelAdapter:
        from channels.website import WebsiteAdapter

        return WebsiteAdapter({"web_root": str(root)})

    def is_live(receipt: Receipt) -> bool:
        page = root / receipt.details["path"]
        return page.is_file() and "本信息已撤回" not in page.read_text(encoding="utf-8")

    yield Harness("website", make, is_live, bad_view=view(title=""))


@contextmanager
def weibo(tmp_path: Path) -> Iterator[Harness]:
    from channels.sandbox.server import SandboxServer
    from channels.sandbox.weibo import create_app

    with SandboxServer(create_app(accounts={"5000000001": "tok-1"})) as server:
        def make() -> ChannelAdapter:
            from channels.weibo import WeiboAdapter

            return WeiboAdapter({"api_base": server.url, "safe_domain": "127.0.0.1", "sandbox": True,
                                 "uid": "5000000001", "rate_limit_retry_seconds": 1},
                                {"access_token": "tok-1"})

        def is_live(receipt: Receipt) -> bool:
            posts = requests.get(f"{server.url}/_sandbox/posts", timeout=5).json()
            return any(str(p["id"]) == receipt.remote_id and not p["deleted"] for p in posts)

        def fault(settings: dict[str, Any]) -> Callable[[], None]:
            return lambda: requests.post(f"{server.url}/_sandbox/faults", json=settings, timeout=5)

        yield Harness("weibo", make, is_live, bad_view=view(summary="长" * 200), faults={
            "retryable": fault({"busy_share": 1.0}),
            "credentials_expired": fault({"expire_tokens": True}),
            "rate_limited": fault({"rate_limit": 0}),
            "outcome_unknown": fault({"drop_responses": 1}),
        })


@contextmanager
def memory(tmp_path: Path) -> Iterator[Harness]:
    from channels import registry
    from tests import fakes

    registry.loaded["memory"] = fakes.MemoryAdapter
    fakes.reset()
    try:
        yield Harness(
            "memory", lambda: fakes.MemoryAdapter({"account": "kit", "limit": 100}),
            lambda r: any(p["id"] == r.remote_id for p in fakes.posts("kit")),
            bad_view=view(title="长" * 200),
            faults={k: (lambda v=v: fakes.plan("kit", "publish", v))
                    for k, v in {"retryable": "retryable", "rate_limited": "rate_limited",
                                 "permanent": "permanent", "credentials_expired": "credentials",
                                 "outcome_unknown": "unknown_after_post"}.items()},
        )
    finally:
        fakes.reset()
        registry.loaded.pop("memory", None)


@contextmanager
def wechat(tmp_path: Path) -> Iterator[Harness]:
    from channels.sandbox.server import SandboxServer
    from channels.sandbox.wechat import create_app

    with SandboxServer(create_app(accounts={"wx0001": "secret-1"})) as server:
        def make() -> ChannelAdapter:
            from channels.wechat import WeChatAdapter

            return WeChatAdapter({"api_base": server.url, "appid": "wx0001", "sandbox": True,
                                  "token_store": str(tmp_path / "tokens")},
                                 {"appsecret": "secret-1"})

        def is_live(receipt: Receipt) -> bool:
            articles = requests.get(f"{server.url}/_sandbox/articles", timeout=5).json()
            return any(a["article_id"] == receipt.remote_id and not a["deleted"]
                       for a in articles)

        def fault(settings: dict[str, Any]) -> Callable[[], None]:
            return lambda: requests.post(f"{server.url}/_sandbox/faults", json=settings, timeout=5)

        yield Harness("wechat", make, is_live, bad_view=view(title="长" * 40), faults={
            "retryable": fault({"busy_next": 1}),
            "rate_limited": fault({"quota_exhausted": True}),
        })


def _from_adapter_tests() -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Adapters whose harness lives beside their own tests."""
    from tests.channels.test_cms_push import CMS_PUSH_FAULTS, cms_push_harness
    from tests.channels.test_newsfeed import NEWSFEED_FAULTS, newsfeed_harness

    return ({"newsfeed": newsfeed_harness, "cms_push": cms_push_harness},
            {"newsfeed": NEWSFEED_FAULTS, "cms_push": CMS_PUSH_FAULTS})


_more, _more_faults = _from_adapter_tests()
HARNESSES = {"website": website, "weibo": weibo, "memory": memory, "wechat": wechat, **_more}
# which faults each harness can make happen (a website on disk has no quota or token)
FAULTS = {
    "website": (),
    "wechat": ("retryable", "rate_limited"),
    **_more_faults,
    "weibo": ("retryable", "credentials_expired", "rate_limited", "outcome_unknown"),
    "memory": ("retryable", "rate_limited", "permanent", "credentials_expired", "outcome_unknown"),
}
