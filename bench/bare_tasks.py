"""The baseline for bench/golive.py: bare Celery tasks doing only the HTTP call we make."""

from __future__ import annotations

import requests

from orchestrator.settings import Settings
from workers.celery_app import make_app

app = make_app(Settings())  # the broker of the environment the worker was started in


@app.task(name="bench.share")
def share(base: str, token: str, text: str) -> None:
    requests.post(f"{base}/2/statuses/share.json", data={"access_token": token, "status": text},
                  timeout=10)
