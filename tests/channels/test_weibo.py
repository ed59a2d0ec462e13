"""The Weibo adapter against a sandbox that rewrites links and counts as the platform does."""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.contract import Receipt
from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app, short_link
from channels.weibo import WeiboAdapter
from channels.weibo_text import weibo_length
from tests.channels import weibo_mid
from tests.contract.harnesses import view

UID, TOKEN = "5000000001", "tok-1"


@pytest.fixture(scope="module")
def server():
    with SandboxServer(create_app({UID: TOKEN}, posts_per_hour=10_000, posts_per_day=10_000,
                                  app_posts_per_hour=10_000)) as running:
        yield running.url


@pytest.fixture
def url(server):
    requests.post(f"{server}/_sandbox/reset", timeout=5).raise_for_status()
    return server


def adapter(url):
    return WeiboAdapter({"api_base": url, "safe_domain": "127.0.0.1", "uid": UID,
                         "sandbox": True}, {"access_token": TOKEN})


def posts(url):
    return requests.get(f"{url}/_sandbox/posts", timeout=5).json()


def test_the_platform_keeps_every_link_as_a_t_cn_short_link(url):
    weibo = adapter(url)
    payload = weibo.render(view(release_id=7))
    receipt = weibo.publish(payload, {}, "k")
    [kept] = posts(url)
    assert payload["marker"] not in kept["text"]  # what lookup() used to search for
    assert short_link(payload["marker"]) in kept["text"]
    assert short_link(payload["marker"]) == short_link(payload["marker"])
    assert kept["text"].startswith("http://t.cn/") or "http://t.cn/" in kept["text"]
    assert receipt.remote_id == kept["idstr"]


def test_lookup_finds_a_post_whose_link_was_rewritten_to_t_cn(url):
    weibo = adapter(url)
    payload = weibo.render(view(release_id=8))
    other = weibo.render(view(release_id=9, title="另一条通知"))
    weibo.publish(other, {}, "k0")
    sent = weibo.publish(payload, {}, "k1")
    found = weibo.lookup(payload, "k1")
    assert found is not None and found.remote_id == sent.remote_id
    assert weibo.lookup(weibo.render(view(release_id=10, title="未发出的通知")), "k2") is None


def test_read_back_gives_the_post_with_its_links_expanded(url):
    weibo = adapter(url)
    payload = weibo.render(view(release_id=11))
    receipt = weibo.publish(payload, {}, "k")
    assert weibo.read_back(payload, receipt) == weibo.shown(payload)
    requests.post(f"{url}/2/statuses/destroy.json",
                  data={"access_token": TOKEN, "id": receipt.remote_id}, timeout=5)
    assert weibo.read_back(payload, receipt) == ""
    gone = Receipt("1", None, receipt.published_at)
    assert weibo.read_back(payload, gone) == ""


@pytest.mark.parametrize(("text", "length"), [
    ("http://127.0.0.1/x中文", 12),  # the 汉字 end the link: 10 + 2
    ("通知http://127.0.0.1/a。" + "汉" * 10, 23),  # a full-width stop ends it too
    ("汉" * 130 + "http://127.0.0.1/" + "x" * 300, 140),  # 317 bytes of link count 10
    ("汉" * 130 + "http://127.0.0.1/" + "中" * 100, 240),  # 汉字 after a link are text
    ("ab", 1), ("abc", 2), ("", 0),
])
def test_the_adapter_counts_as_the_platform_does(url, text, length):
    assert weibo_length(text) == length
    problems = adapter(url).problems({"text": text, "marker": "x"})
    assert any("不超过140字" in p.message for p in problems) == (length > 140)


TEXT = st.lists(st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40),
    st.text(alphabet="中文政务微博通知。，、（）", max_size=40),
    st.builds(lambda path, after: f"http://127.0.0.1/{path}{after}",  # what ends a link?
              st.text(alphabet="abcxyz0123456789/?=&.-_%", max_size=300),
              st.sampled_from(["", " ", "中文", "。", "（", "\u3000"])),
), min_size=1, max_size=8).map("".join)
PADDING = st.integers(90, 140).map(lambda n: "汉" * n)  # to come near the limit often


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(padding=PADDING, text=TEXT)
def test_the_adapter_refuses_exactly_what_the_sandbox_refuses_as_too_long(server, padding, text):
    """Property: for any text, adapter says "too long" ⇔ the platform answers 20012."""
    text = f"{padding}{text} http://127.0.0.1/p"  # the link of the safe domain a post needs
    too_long = any("不超过140字" in p.message for p in adapter(server).problems(
        {"text": text, "marker": "x"}))
    answer = requests.post(f"{server}/2/statuses/share.json",
                           data={"access_token": TOKEN, "status": text}, timeout=5)
    body = answer.json()
    assert (body.get("error_code") == 20012) == too_long, (text, body)
    if answer.status_code == 200:  # the platform's own count, returned with the status
        assert body["textLength"] == 2 * weibo_length(text)
        requests.post(f"{server}/2/statuses/destroy.json",
                      data={"access_token": TOKEN, "id": body["idstr"]}, timeout=5)


def test_a_post_page_in_weibo_coms_base62_form_names_the_apis_numeric_id():
    from channels.weibo import status_id_of

    assert status_id_of("z0JH2lOMb") == "3501756485200075"  # a pair weibo.com itself shows
    assert status_id_of("3501756485200075") == "3501756485200075"
    for shown in ("", "0123", "abc-def", "ＡＢＣ", "z" * 13, "12345678901234567890123"):
        assert status_id_of(shown) is None, shown


@given(st.integers(min_value=10**15, max_value=10**19))
def test_base62_ids_read_back_to_the_number_they_encode(number):
    from channels.weibo import status_id_of

    mid = weibo_mid(str(number))
    if any(c.isalpha() for c in mid):
        assert status_id_of(mid) == str(number)
