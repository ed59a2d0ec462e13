"""Tell channel admins about an integrity alert: a webhook (JSON POST), when configured."""

from __future__ import annotations

import logging
from typing import Any

import requests

from orchestrator.settings import Settings

log = logging.getLogger(__name__)


def alerts(settings: Settings, new_alerts: list[dict[str, Any]]) -> int:
    """POST each alert to the webhook; returns how many were accepted."""
    if not settings.alert_webhook_url or not new_alerts:
        return 0
    sent = 0
    for alert in new_alerts:
        try:
            response = requests.post(settings.alert_webhook_url, timeout=5, json={
                "kind": "integrity_alert", "text": f"渠道 {alert['channel']} 上的发布内容与审定稿不一致",
                **alert})
            sent += response.status_code < 300
        except requests.RequestException as exc:
            log.warning("alert webhook failed: %s", type(exc).__name__)
    return sent
