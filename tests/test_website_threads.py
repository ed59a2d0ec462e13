"""Follow-ups of one story (重大突发事件) are shown together on the website."""

from channels.website import WebsiteAdapter
from tests.contract.harnesses import view


def test_follow_ups_are_threaded_under_the_first_statement(tmp_path):
    site = WebsiteAdapter({"web_root": str(tmp_path)})
    first = site.render(view(1, title="某地发生地震：初步情况"))
    update = site.render(view(2, title="某地地震：伤亡与救援进展", parent_id=1))
    later = site.render(view(3, title="某地地震：灾后安置措施", parent_id=2))
    for payload in (first, update, later):
        site.publish(payload, site.stage(payload, f"k{payload['id']}"), f"k{payload['id']}")
    thread = (tmp_path / "threads" / "1.html").read_text(encoding="utf-8")
    positions = [thread.index(t) for t in ("初步情况", "伤亡与救援进展", "灾后安置措施")]
    assert positions == sorted(positions) and "持续更新" in thread
    assert not (tmp_path / "threads" / "2.html").exists()
