"""`create_app(settings)`: the IncidentOS web app (FastAPI). The routes are thin; what they do lives in
the package's modules. Services are built from the settings unless given (tests pass scripted models)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .rendering import STATIC, LiveLinks, environment
from .routes import intake, investigations, memory, operations, pages
from .services import WebServices, build_services
from .settings import IncidentWebSettings

SECURITY_HEADERS = {
    # the pages load only their own script and style; no inline script runs in the live app
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(settings: IncidentWebSettings | None = None, *, services: WebServices | None = None) -> FastAPI:
    """The app over `settings.data_dir`; `services` replaces what the settings would build."""
    settings = settings or (services.settings if services else IncidentWebSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.services.close()

    # no /docs page: Swagger UI loads its script from a CDN, which the pages' CSP (and an offline app) refuse
    app = FastAPI(title="IncidentOS", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  summary="Investigations of alerts by cascadeflow's incident agent: live events, cost, memory, "
                          "budget, queue and audit trail")
    app.state.services = services or build_services(settings)
    app.state.templates = Jinja2Templates(env=environment())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (intake, investigations, memory, operations, pages):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(HTTPException)
    async def errors(request: Request, exc: HTTPException) -> Response:
        """API clients get JSON; a browser asking for a page gets a page."""
        wants_page = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
        if not wants_page:
            return await http_exception_handler(request, exc)
        return app.state.templates.TemplateResponse(request, "error.html", {
            "status": exc.status_code, "detail": exc.detail, "links": LiveLinks(), "inline": None, "page": "",
            "signed_in": False, "here": "/"}, status_code=exc.status_code, headers=exc.headers)

    return app
