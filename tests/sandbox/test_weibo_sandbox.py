"""The Weibo sandbox over real HTTP: the platform's rules, error answers and faults."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app, short_link, weibo_length

UID, TOKEN = "5000000001", "tok-1"
UID2, TOKEN2 = "5000000002", "tok-2"
LINK = "http://127.0.0.1/articles/1.html"
SHARE = "/2/statuses/share.json"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def server():
    app = create_app({UID: TOKEN, UID2: TOKEN2}, safe_domain="127.0.0.1")
    with SandboxServer(app) as running:
        running.app = app
        yield running


@pytest.fixture
def url(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=5).raise_for_status()
    return server.url


def share(url, text, token=TOKEN, timeout=5.0, **kwargs):
    return requests.post(f"{url}{SHARE}", data={"access_token": token, "status": text},
                         timeout=timeout, **kwargs)


def faults(url, **settings):
    answer = requests.post(f"{url}/_sandbox/faults", json=settings, timeout=5)
    answer.raise_for_status()
    return answer.json()


def posts(url):
    return requests.get(f"{url}/_sandbox/posts", timeout=5).json()


def assert_error(answer, code, http_status, path=SHARE):
    assert answer.status_code == http_status, answer.text
    body = answer.json()
    assert set(body) == {"error", "error_code", "request"}
    assert body["error_code"] == code and body["request"] == path
    return body


def test_a_post_answers_a_status_object_and_is_kept_with_its_receive_time(url):
    before = time.time()
    answer = share(url, f"关于冬季安全生产的通知 {LINK}")
    assert answer.status_code == 200
    status = answer.json()
    assert isinstance(status["id"], int) and status["idstr"] == str(status["id"])
    assert status["mid"] == status["idstr"]
    assert status["text"] == f"关于冬季安全生产的通知 {short_link(LINK)}"  # as the platform keeps it
    assert status["user"] == {**status["user"], "id": int(UID), "idstr": UID}
    assert time.strptime(status["created_at"], "%a %b %d %H:%M:%S +0800 %Y")
    [kept] = posts(url)
    assert kept["id"] == status["id"] and kept["uid"] == UID and not kept["deleted"]
    assert before <= kept["received_at"] <= kept["stored_at"] <= time.time()


@pytest.mark.parametrize(("text", "length"), [
    ("汉" * 130 + LINK, 140),  # a link is 10 whatever its length
    ("汉" * 130 + "http://127.0.0.1/" + "x" * 300, 140),
    ("汉" * 129 + "ab" + LINK, 140),  # two ASCII characters make one
    ("汉" * 129 + "abc" + LINK, 141),  # ceil(281 / 2)
    ("汉" * 131 + LINK, 141),
    (LINK + "汉" * 130, 140),  # a 汉字 ends the link
    ("汉" * 120 + LINK + " http://127.0.0.1/b", 141),
])
def test_length_is_counted_as_weibo_counts_it(url, text, length):
    assert weibo_length(text) == length
    answer = share(url, text)
    if length <= 140:
        assert answer.status_code == 200, answer.text
    else:
        body = assert_error(answer, 20012, 400)
        assert body["error"] == "Text too long, please input text less than 140 characters!"
    assert len(posts(url)) == (1 if length <= 140 else 0)


@pytest.mark.parametrize("text", ["没有链接的微博", "其他网站 http://example.com/a",
                                  "仿冒 http://127.0.0.1.evil.example/a"])
def test_a_status_needs_a_link_of_the_safe_domain(url, text):
    body = assert_error(share(url, text), 10017, 400)
    assert "status" in body["error"]


def test_a_missing_status_is_a_parameter_error(url):
    assert_error(share(url, ""), 10016, 400)


def test_the_same_text_again_is_repeat_content_until_the_first_is_deleted(url):
    first = share(url, f"重复 {LINK}").json()
    assert assert_error(share(url, f"重复 {LINK}"), 20019, 400)["error"] == "repeat content!"
    assert share(url, f"重复 {LINK}", token=TOKEN2).status_code == 200  # another account
    requests.post(f"{url}/2/statuses/destroy.json",
                  data={"access_token": TOKEN, "id": first["idstr"]}, timeout=5)
    assert share(url, f"重复 {LINK}").status_code == 200


def test_only_one_of_many_concurrent_identical_posts_is_stored(url):
    answers = []

    def post():
        answers.append(share(url, f"并发 {LINK}").status_code)

    threads = [threading.Thread(target=post) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] + [400] * 11
    assert len(posts(url)) == 1


def test_every_link_is_kept_and_answered_as_a_t_cn_short_link_that_expands_back(url):
    long = "http://127.0.0.1/articles/" + "x" * 300 + ".html"
    status = share(url, f"长链接{long}中文 {LINK}").json()
    assert status["text"] == f"长链接{short_link(long)}中文 {short_link(LINK)}"
    assert short_link(long) != short_link(LINK) and len(short_link(long)) == len("http://t.cn/") + 7
    assert posts(url)[0]["text"] == status["text"]
    timeline = requests.get(f"{url}/2/statuses/user_timeline.json",
                            params={"access_token": TOKEN}, timeout=5).json()
    assert timeline["statuses"][0]["text"] == status["text"]
    expanded = requests.get(f"{url}/2/short_url/expand.json", timeout=5, params={
        "access_token": TOKEN, "url_short": [short_link(long), "http://t.cn/unknown"]}).json()
    assert expanded["urls"] == [
        {"url_short": short_link(long), "url_long": long, "type": 0, "result": True},
        {"url_short": "http://t.cn/unknown", "url_long": "", "type": 0, "result": False}]
    shown = requests.get(f"{url}/2/statuses/show.json", timeout=5,
                         params={"access_token": TOKEN, "id": status["idstr"]}).json()
    assert shown["text"] == status["text"]


def test_the_same_words_with_another_link_soon_after_is_similar_text(url):
    assert share(url, f"关于冬季安全生产的通知 {LINK}").status_code == 200
    body = assert_error(share(url, f"关于冬季安全生产的通知  {LINK}?v=2"), 20017, 400)
    assert body["error"] == "Repeated weibo text!"
    assert share(url, f"关于冬季安全生产的补充通知 {LINK}").status_code == 200


def test_similar_text_is_only_refused_within_its_window(server):
    app = create_app({UID: TOKEN}, similar_window_s=0.3)
    with SandboxServer(app) as running:
        assert share(running.url, f"相似 {LINK}").status_code == 200
        assert_error(share(running.url, f"相似 {LINK}?a"), 20017, 400)
        time.sleep(0.35)
        assert share(running.url, f"相似 {LINK}?a").status_code == 200


def test_the_daily_quota_of_an_account_answers_10024(server):
    with SandboxServer(create_app({UID: TOKEN, UID2: TOKEN2}, posts_per_day=3)) as running:
        for n in range(3):
            assert share(running.url, f"第{n}条 {LINK}").status_code == 200
        body = assert_error(share(running.url, f"第4条 {LINK}"), 10024, 403)
        assert body["error"] == "User requests for (statuses/share) out of rate limit!"
        assert share(running.url, f"第4条 {LINK}", token=TOKEN2).status_code == 200


def test_the_apps_hourly_quota_over_all_accounts_answers_20016(server):
    with SandboxServer(create_app({UID: TOKEN, UID2: TOKEN2}, app_posts_per_hour=3)) as running:
        assert share(running.url, f"一 {LINK}").status_code == 200
        assert share(running.url, f"二 {LINK}", token=TOKEN2).status_code == 200
        assert share(running.url, f"三 {LINK}").status_code == 200
        body = assert_error(share(running.url, f"四 {LINK}", token=TOKEN2), 20016, 400)
        assert body["error"] == "Update weibo too fast!"


def test_a_busy_fault_answers_only_a_busy_code(url):
    faults(url, busy_next=1, busy_code=20019)  # a platform rule's code is not a fault
    assert_error(share(url, f"a {LINK}"), 10001, 500)


def test_the_default_limit_is_30_posts_an_hour_per_account(url):
    for n in range(30):
        assert share(url, f"第{n}条 {LINK}").status_code == 200
    body = assert_error(share(url, f"第31条 {LINK}"), 10023, 403)
    assert body["error"] == "User requests out of rate limit!"
    assert share(url, f"第31条 {LINK}", token=TOKEN2).status_code == 200


def test_the_rate_limit_window_can_be_made_short(url):
    faults(url, rate_limit=2, rate_window_s=0.3)
    assert share(url, f"一 {LINK}").status_code == 200
    assert share(url, f"二 {LINK}").status_code == 200
    assert_error(share(url, f"三 {LINK}"), 10023, 403)
    time.sleep(0.35)
    assert share(url, f"三 {LINK}").status_code == 200


def test_a_rate_limit_of_zero_refuses_every_post(url):
    faults(url, rate_limit=0)
    assert_error(share(url, f"一 {LINK}"), 10023, 403)


def test_tokens_unknown_missing_and_expired(url):
    assert assert_error(share(url, f"a {LINK}", token="nope"), 21332, 403)["error"] == \
        "invalid_access_token"
    assert_error(share(url, f"a {LINK}", token=""), 21301, 403)
    faults(url, expire_tokens=True)
    assert assert_error(share(url, f"a {LINK}"), 21327, 403)["error"] == "expired_token"
    timeline = requests.get(f"{url}/2/statuses/user_timeline.json",
                            params={"access_token": TOKEN}, timeout=5)
    assert_error(timeline, 21327, 403, "/2/statuses/user_timeline.json")
    faults(url)  # the account was re-authorised
    assert share(url, f"a {LINK}").status_code == 200


def test_an_account_can_be_reauthorised_with_a_new_token(url):
    requests.post(f"{url}/_sandbox/accounts", json={"uid": UID, "access_token": "tok-new"},
                  timeout=5)
    assert_error(share(url, f"a {LINK}"), 21332, 403)
    assert share(url, f"a {LINK}", token="tok-new").status_code == 200
    requests.post(f"{url}/_sandbox/accounts", json={"uid": UID, "access_token": TOKEN}, timeout=5)


def test_busy_answers_system_error_and_stores_nothing(url):
    faults(url, busy_share=1.0)
    assert assert_error(share(url, f"a {LINK}"), 10001, 500)["error"] == "system error!"
    faults(url, busy_share=1.0, busy_code=10009)
    assert_error(share(url, f"a {LINK}"), 10009, 503)
    faults(url, busy_next=2)
    assert [share(url, f"a {LINK}").status_code for _ in range(3)] == [500, 500, 200]
    assert len(posts(url)) == 1


def test_a_busy_share_is_reproducible_with_a_seed(url):
    def pattern():
        return [requests.get(f"{url}/2/statuses/user_timeline.json",
                             params={"access_token": TOKEN}, timeout=5).status_code
                for _ in range(20)]

    faults(url, busy_share=0.5, seed=7)
    first = pattern()
    faults(url, busy_share=0.5, seed=7)
    assert pattern() == first and {200, 500} == set(first)


def test_a_dropped_answer_gives_a_gateway_timeout_after_the_post_was_stored(url):
    faults(url, drop_responses=1)
    answer = share(url, f"丢失的应答 {LINK}")
    assert answer.status_code == 504 and "Gateway Time-out" in answer.text
    with pytest.raises(ValueError):
        answer.json()
    [kept] = posts(url)
    assert kept["sent_text"] == f"丢失的应答 {LINK}" and kept["answer_dropped"]
    timeline = requests.get(f"{url}/2/statuses/user_timeline.json",
                            params={"access_token": TOKEN}, timeout=5).json()
    assert timeline["statuses"][0]["id"] == kept["id"]
    assert share(url, f"下一条 {LINK}").status_code == 200  # only the next N are dropped


def test_a_dropped_connection_leaves_the_client_without_an_answer(url):
    faults(url, drop_responses=1, drop_mode="close")
    with pytest.raises(requests.ConnectionError):
        share(url, f"断开 {LINK}")
    assert [p["sent_text"] for p in posts(url)] == [f"断开 {LINK}"]


def test_latency_makes_the_client_time_out_while_the_post_still_goes_through(url):
    faults(url, latency_ms=300)
    with pytest.raises(requests.ReadTimeout):
        share(url, f"慢 {LINK}", timeout=0.1)
    deadline = time.monotonic() + 2
    while not posts(url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(posts(url)) == 1


def test_the_timeline_is_newest_first_and_counts_live_posts(url):
    ids = [share(url, f"第{n}条 {LINK}").json()["id"] for n in range(3)]
    share(url, f"别的账号 {LINK}", token=TOKEN2)
    timeline = requests.get(f"{url}/2/statuses/user_timeline.json",
                            params={"access_token": TOKEN, "count": 2}, timeout=5).json()
    assert [s["id"] for s in timeline["statuses"]] == ids[::-1][:2]
    assert timeline["total_number"] == 3
    page2 = requests.get(f"{url}/2/statuses/user_timeline.json",
                         params={"access_token": TOKEN, "count": 2, "page": 2}, timeout=5)
    assert [s["id"] for s in page2.json()["statuses"]] == ids[:1]


def test_destroy_answers_the_deleted_status_and_keeps_it_flagged(url):
    status = share(url, f"要删除的 {LINK}").json()
    destroy = f"{url}/2/statuses/destroy.json"
    other = requests.post(destroy, data={"access_token": TOKEN2, "id": status["idstr"]}, timeout=5)
    assert_error(other, 20102, 403, "/2/statuses/destroy.json")
    answer = requests.post(destroy, data={"access_token": TOKEN, "id": status["idstr"]}, timeout=5)
    assert answer.status_code == 200 and answer.json()["id"] == status["id"]
    [kept] = posts(url)
    assert kept["deleted"] and kept["deleted_at"] >= kept["stored_at"]
    for post_id in (status["idstr"], "123"):
        again = requests.post(destroy, data={"access_token": TOKEN, "id": post_id}, timeout=5)
        body = assert_error(again, 20101, 400, "/2/statuses/destroy.json")
        assert body["error"] == "target weibo does not exist!"


def test_a_picture_is_sent_as_multipart_and_must_be_an_image(url):
    answer = share(url, f"有图 {LINK}", files={"pic": ("a.png", PNG, "image/png")})
    assert answer.status_code == 200
    assert posts(url)[0]["has_picture"] and posts(url)[0]["pic_sha256"]
    text_file = share(url, f"假图 {LINK}", files={"pic": ("a.png", b"not an image", "image/png")})
    assert_error(text_file, 20005, 400)


def test_requests_are_counted_per_endpoint(url):
    share(url, f"a {LINK}")
    share(url, f"a {LINK}")
    requests.get(f"{url}/2/statuses/user_timeline.json", params={"access_token": TOKEN}, timeout=5)
    assert requests.get(f"{url}/_sandbox/requests", timeout=5).json() == {
        SHARE: 2, "/2/statuses/user_timeline.json": 1}


def test_faults_are_replaced_merged_validated_and_settable_from_python(server, url):
    assert faults(url, busy_next=1)["busy_next"] == 1
    merged = requests.post(f"{url}/_sandbox/faults?merge=1", json={"latency_ms": 5}, timeout=5)
    assert merged.json()["busy_next"] == 1 and merged.json()["latency_ms"] == 5
    assert faults(url, latency_ms=5)["busy_next"] == 0  # replaced
    for bad in ({"no_such_fault": 1}, {"busy_share": 2}, {"drop_mode": "lose"}):
        assert requests.post(f"{url}/_sandbox/faults", json=bad, timeout=5).status_code == 400
    server.app.state.sandbox.faults.set(busy_next=1)
    assert_error(share(url, f"a {LINK}"), 10001, 500)
    assert requests.get(f"{url}/_sandbox/faults", timeout=5).json()["busy_next"] == 0


def test_accounts_may_be_given_as_pairs_and_the_app_mounted_under_a_prefix():
    from fastapi import FastAPI

    outer = FastAPI()
    outer.mount("/sandbox/weibo", create_app([(UID, TOKEN)], posts_per_hour=1))
    with SandboxServer(outer) as running:
        base = f"{running.url}/sandbox/weibo"
        assert share(base, f"a {LINK}").status_code == 200
        body = assert_error(share(base, f"b {LINK}"), 10023, 403)
        assert body["request"] == SHARE
        faults(base, drop_responses=1, drop_mode="close", rate_limit=5)
        with pytest.raises(requests.RequestException):  # the answer breaks off half-way
            share(base, f"c {LINK}")
        assert [p["sent_text"] for p in posts(base)] == [f"a {LINK}", f"c {LINK}"]
