"""A site's CMS receiving tongfa's pushes, on loopback, for the chaos rig and `tongfa demo`.

It does what docs/adapters.md asks of a receiving CMS: verify the Standard Webhooks
signature with the off-the-shelf library (and so its replay window), keep one page
per webhook-id (a repeat gets the first answer, not a second page), answer
`{"id", "url", "published_at"}`; GET and DELETE `<endpoint>/<key>` look a push up and
withdraw it. Faults (faults.py, by request count): `status` answers that HTTP status
before anything is kept; `slow` keeps the page, then answers only after `ms` (a
timeout after the body was received); busy answers 503. Every push is in the wire log.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from standardwebhooks import Webhook, WebhookVerificationError

from channels.sandbox import wirelog
from channels.sandbox.faults import Faults, SandboxApp, install_admin

ENDPOINT = "/api/releases"


def create_app(secret: str, *, faults: Faults | None = None, seed: int = 0,
               site: str = "https://www.example.gov.cn") -> FastAPI:
    """`secret`: the whsec_ secret shared with the channel. State: `app.state.pages`."""
    app = SandboxApp(title="CMS receiver sandbox", docs_url=None, redoc_url=None)
    faults = faults or Faults(seed=seed)
    install_admin(app, faults)
    wire = wirelog.WireLog("cms")
    wirelog.install(app, wire)
    webhook, lock = Webhook(secret), threading.Lock()
    pages: dict[str, dict[str, Any]] = {}
    app.state.pages = pages

    def genuine(request: Request, data: bytes) -> bool:
        # a body-less GET/DELETE signs "<METHOD> <path>" in the body's place (docs/adapters.md)
        signed = data or f"{request.method} {request.scope['raw_path'].decode()}".encode()
        try:
            webhook.verify(signed, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            return False
        return True

    @app.post(ENDPOINT)
    async def push(request: Request) -> Response:
        received_at, data = time.time(), await request.body()
        key = request.headers.get("webhook-id", "")

        def said(answer: str, accepted: bool) -> None:
            wire.record(account=ENDPOINT, operation="POST", create=True, target=key,
                        content=data, answer=answer, accepted=accepted, received_at=received_at)

        planned = faults.planned("status")
        if planned is not None or faults.take_busy():
            status = int(planned.get("status", 503)) if planned else 503
            said(str(status), False)
            return JSONResponse({"error": "unavailable"}, status)
        if not genuine(request, data):
            said("401", False)
            return JSONResponse({"error": "bad signature"}, 401)
        with lock:
            repeat = key in pages
            if not repeat:
                doc = json.loads(data)
                pages[key] = {"doc": doc, "deleted": False, "answer": {
                    "id": f"cms-{doc['id']}", "url": f"{site}/art/{doc['id']}.html",
                    "published_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}}
            answer = pages[key]["answer"]
        said("repeat" if repeat else "201", not repeat)
        slow = faults.planned("slow")
        if slow is not None:  # kept, but the answer comes after the client stopped waiting
            await asyncio.sleep(float(slow.get("ms", 3000)) / 1000)
        return JSONResponse(answer, 201)

    @app.get(ENDPOINT + "/{key}")
    async def read(key: str, request: Request) -> Response:
        if not genuine(request, b""):
            return JSONResponse({"error": "bad signature"}, 401)
        with lock:
            page = pages.get(key)
        if page is None or page["deleted"]:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(page["answer"])

    @app.delete(ENDPOINT + "/{key}")
    async def remove(key: str, request: Request) -> Response:
        if not genuine(request, b""):
            return JSONResponse({"error": "bad signature"}, 401)
        with lock:
            if key not in pages:
                return JSONResponse({"error": "not found"}, 404)
            pages[key]["deleted"] = True
        return Response(status_code=204)

    @app.get("/_sandbox/pages")
    def inspect_pages() -> dict[str, Any]:
        with lock:
            return {key: {**page, "doc": None} for key, page in pages.items()}

    return app
