"""Tell channel admins about an integrity alert: a webhook (JSON POST), when configured.

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


def alerts(settings: Settings, new_alerts: list[dict[str, Any]]) -> int:
    """POST each alert to the webhook; returns how many were accepted."""
    if not settings.alert_webhook_url or not new_alerts:
        return 0
    if settings.alert_webhook_secret is None:
        log.warning("alert webhook not called: TONGFA_ALERT_WEBHOOK_SECRET is not set")
        return 0
    secret = settings.alert_webhook_secret.get_secret_value()
    sent = 0
    with outbound.session(outbound.Allowed.of(settings.outbound_allow)) as http:
        for alert in new_alerts:
            data = json.dumps({"kind": "integrity_alert",
                               "text": f"渠道 {alert['channel']} 上的发布内容与审定稿不一致", **alert},
                              ensure_ascii=False, default=str).encode("utf-8")
            # one alert, one id: a receiver drops a repeat of the same alert
            headers = {**outbound.webhook_headers(secret, f"alert-{alert['id']}", utcnow(), data),
                       "Content-Type": "application/json; charset=utf-8"}
            try:
                response = http.post(settings.alert_webhook_url, data=data, headers=headers,
                                     timeout=5)
                sent += response.status_code < 300
            except outbound.OutboundRefused as exc:
                log.warning("alert webhook refused: %s", exc.reason)
            except requests.RequestException as exc:
                log.warning("alert webhook failed: %s", type(exc).__name__)
    return sent
