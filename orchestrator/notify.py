"""Tell people about an alert (integrity, a delivery that needs a decision, a held
release): a webhook (JSON POST with `kind` and `text`), when configured.

The POST is signed the Standard Webhooks way with settings.alert_webhook_secret, so the
receiver verifies it with an off-the-shelf library (docs/adapters.md); it goes only to
a public address or one TONGFA_OUTBOUND_ALLOW names, checked as the connection is made.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from channels import outbound
from orchestrator.domain.clock import utcnow
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


def configured(settings: Settings) -> bool:
    return bool(settings.alert_webhook_url) and settings.alert_webhook_secret is not None


def operator_alerts(settings: Settings, due: list[dict[str, Any]]) -> set[int]:
    """POST each alert for a person (usecases/alerts.py: a delivery that needs a decision,
    a held release, an integrity alert); returns the ids the receiver accepted."""
    return _post(settings, [(f"alert-{a['id']}", a["id"], {**a, "text": a["message"]})
                            for a in due])


def _post(settings: Settings, items: list[tuple[str, int, dict[str, Any]]]) -> set[int]:
    if not settings.alert_webhook_url or not items:
        return set()
    if settings.alert_webhook_secret is None:
        log.warning("alert webhook not called: TONGFA_ALERT_WEBHOOK_SECRET is not set")
        return set()
    secret = settings.alert_webhook_secret.get_secret_value()
    accepted = set()
    with outbound.session(outbound.Allowed.of(settings.outbound_allow)) as http:
        for webhook_id, key, body in items:
            data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
            # one alert, one id: a receiver drops a repeat of the same alert
            headers = {**outbound.webhook_headers(secret, webhook_id, utcnow(), data),
                       "Content-Type": "application/json; charset=utf-8"}
            try:
                response = http.post(settings.alert_webhook_url, data=data, headers=headers,
                                     timeout=5)
                if response.status_code < 300:
                    accepted.add(key)
            except outbound.OutboundRefused as exc:
                log.warning("alert webhook refused: %s", exc.reason)
            except requests.RequestException as exc:
                log.warning("alert webhook failed: %s", type(exc).__name__)
    return accepted
