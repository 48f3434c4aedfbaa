"""FastAPI dependencies: the app's services (swappable in tests) and the write guards."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .security import check_webhook, check_write
from .services import WebServices


def services(request: Request) -> WebServices:
    return request.app.state.services


Services = Annotated[WebServices, Depends(services)]


def writer(request: Request, svc: Services) -> None:
    """Guards every write endpoint: the API token, or a signed-in browser from this app's pages."""
    check_write(request, svc.settings.api_token)


def webhook(request: Request, svc: Services) -> None:
    check_webhook(request, svc.settings.intake_secret())


Writer = Depends(writer)
Webhook = Depends(webhook)
