"""Re-encrypt every channel's credentials under a new TONGFA_SECRET_KEY (MultiFernet-style).

Why a script: there is no `tongfa` command for this yet, and re-entering credentials
under the new key does not work (saving a channel first decrypts what is stored, which
the new key cannot). This runs with the OLD key in the environment and the NEW one in
ROTATE_TO_SECRET_KEY, rotates every token in one transaction with one audit event per
channel, and checks each result decrypts under the new key before committing.
Procedure: docs/deploy.md, "Rotating the credentials key".

    docker compose run --rm --no-deps -T -e ROTATE_TO_SECRET_KEY migrate \
        python - < deploy/rotate_secret_key.py
"""

from __future__ import annotations

import os
import sys

from cryptography.fernet import Fernet, MultiFernet
from sqlmodel import select

from orchestrator.bootstrap import make_context
from orchestrator.domain.audit_actions import Action
from orchestrator.settings import Settings, get_settings
from orchestrator.store.models import ChannelInstance
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import Context, NoQueue, UnitOfWork


def rotate(ctx: Context, new_key: str, actor: str = "ops") -> int:
    """Re-encrypt under new_key what ctx.settings' key encrypted; returns channels changed."""
    if ctx.settings.secret_key is None:
        raise SystemExit("TONGFA_SECRET_KEY (the old key) is not set in this environment")
    new = Fernet(new_key.strip().encode())
    keys = MultiFernet([new, Fernet(ctx.settings.secret_key.get_secret_value().strip())])
    changed = 0
    with UnitOfWork(ctx) as uow:
        for row in uow.session.exec(select(ChannelInstance).order_by(ChannelInstance.name)):
            if not row.credentials_encrypted:
                continue
            token = keys.rotate(row.credentials_encrypted.encode())
            new.decrypt(token)  # refuse to commit anything the new key cannot read
            row.credentials_encrypted = token.decode()
            uow.session.add(row)
            audit.record(uow.session, actor=actor, action=Action.CHANNEL_KEY_ROTATED,
                         subject_type="channel", subject_id=row.name, channel=row.name)
            changed += 1
        uow.commit()
    return changed


def main() -> int:
    new_key = os.environ.get("ROTATE_TO_SECRET_KEY", "")
    if not new_key:
        print("set ROTATE_TO_SECRET_KEY to the new Fernet key", file=sys.stderr)
        return 2
    settings: Settings = get_settings()
    if settings.secret_key is not None and \
            settings.secret_key.get_secret_value().strip() == new_key.strip():
        print("TONGFA_SECRET_KEY is already the new key: run this with the old one",
              file=sys.stderr)
        return 2
    ctx = make_context(settings, NoQueue())  # re-encrypting sends no work
    print(f"{rotate(ctx, new_key)} channel(s) re-encrypted; now set TONGFA_SECRET_KEY to the "
          "new key and restart every tongfa container")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
