"""The production ASGI entry point: `uvicorn orchestrator.api.asgi:app --workers 4`.

`make_app` is a factory that needs a Context, but uvicorn's `--workers` imports a
module attribute in every worker process; so the app is built here, once per process,
from the environment (TONGFA_*), with JSON logs. `tongfa serve` does not use this
module: it builds its own app with the sandboxes mounted.
"""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.bootstrap import installed_context, make_app
from orchestrator.observability import configure_logging
from orchestrator.settings import get_settings


def build() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    return make_app(installed_context(settings))


app = build()
