"""The embedded default's first start: demo people and channels, so `make run` shows something."""

from __future__ import annotations

import os
import secrets as pysecrets
from pathlib import Path

from orchestrator.usecases import channels, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

DEMO_USERS = {
    "press": ["author"],  # 新闻办 press officer
    "reviewer": ["reviewer"],  # 部门审核
    "secrecy": ["secrecy"],  # 保密审查
    "leader": ["approver"],  # 领导签发
    "channels": ["channel_admin"],
    "auditor": ["auditor"],
}
WEIBO_ACCOUNTS = {"weibo-office": "5000000001", "weibo-press": "5000000002"}
WECHAT_APPID = "wx5a0d0b0x0sandbox"


def seed_users(ctx: Context) -> dict[str, str]:
    """Create the demo people; returns their API tokens (shown once)."""
    tokens = {}
    for name, roles in DEMO_USERS.items():
        with UnitOfWork(ctx) as uow:
            tokens[name] = users.add_user(uow, name, roles, actor="seed")
    return tokens


def seed_channels(ctx: Context, api_url: str) -> list[str]:
    """The website and two Weibo accounts on the built-in sandbox."""
    settings = ctx.settings
    with UnitOfWork(ctx) as uow:
        channels.save_channel(
            uow, "website", "website",
            {"web_root": str(settings.resolved_site_root), "base_url": settings.site_base_url},
            None, "seed",
        )
    for name, uid in WEIBO_ACCOUNTS.items():
        with UnitOfWork(ctx) as uow:
            channels.save_channel(
                uow, name, "weibo",
                {"api_base": f"{api_url}/sandbox/weibo", "safe_domain": "127.0.0.1", "uid": uid,
                 "sandbox": True},
                {"access_token": "sbx_" + pysecrets.token_urlsafe(16)}, "seed",
            )
    with UnitOfWork(ctx) as uow:
        channels.save_channel(
            uow, "wechat", "wechat",
            {"api_base": f"{api_url}/sandbox/wechat", "appid": WECHAT_APPID, "author": "新闻办",
             "token_store": str(settings.allowed_private_roots[0] / "wechat-tokens"), "sandbox": True},
            {"appsecret": "sbx_" + pysecrets.token_urlsafe(16),
             "callback_token": "sbx_" + pysecrets.token_urlsafe(12)}, "seed",
        )
    with UnitOfWork(ctx) as uow:  # the newspaper/broadcaster desk: SFTP drop and e-mail
        channels.save_channel(
            uow, "newsfeed", "newsfeed",
            {"delivery": ["sftp", "email", "atom"], "formats": ["newsml", "nitf"],
             "sandbox": True,
             "sftp": {"host": "127.0.0.1", "port": settings.desk_sftp_port, "username": "desk",
                      "remote_dir": "incoming", "accept_any_host_key": True},
             "email": {"host": "127.0.0.1", "port": settings.desk_smtp_port,
                       "from_addr": "press@example.gov.cn", "to_addrs": ["desk@paper.example.cn"]},
             "atom": {"directory": str(settings.resolved_site_root / "newsfeed"),
                      "base_url": f"{settings.site_base_url}/newsfeed"}},
            {"sftp_password": "sbx_" + pysecrets.token_urlsafe(12)}, "seed",
        )
    return ["website", *WEIBO_ACCOUNTS, "wechat", "newsfeed"]


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for name, token in tokens.items():
            handle.write(f"{name}\t{','.join(DEMO_USERS[name])}\t{token}\n")
