"""The plugin passes tongfa's contract kit: the `channels.contract_kit` pytest plugin comes
with tongfa, so nothing here but the harness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tongfa_bulletin.adapter import BulletinAdapter

from channels.contract_kit import ContractSuite, Harness, view


@contextmanager
def board(tmp_path: Path) -> Iterator[Harness]:
    folder = tmp_path / "board"
    folder.mkdir()
    yield Harness(
        "bulletin",
        lambda: BulletinAdapter({"board_dir": str(folder)}),
        lambda receipt: (folder / receipt.details["file"]).is_file(),  # what the board reads
        bad_view=view(title=""),
        faults={"retryable": lambda: (folder / ".busy").touch()},
    )


class TestBulletin(ContractSuite):
    harnesses = {"bulletin": board}
    faults = {"bulletin": ("retryable",)}


def test_the_notice_comes_from_this_package_template():
    adapter = BulletinAdapter({"board_dir": "unused"})
    assert adapter.render(view())["text"].startswith("【关于做好冬季安全生产工作的通知】\n")
