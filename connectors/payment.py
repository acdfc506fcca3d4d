"""Online payment (national payment platform style): register a payment, send the citizen to the
provider's page; the provider calls back with a signed message (api_citizens.payment_callback).
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from connectors import sandbox
from connectors.http import post_signed
from engine.config import Settings


def create(settings: Settings, factory: sessionmaker[Session], *, reference: str, amount: int, currency: str,
           dossier_code: str, return_url: str, sandbox_page: str) -> str:
    """Register the payment with the provider; returns the page the citizen pays on. The provider
    de-duplicates by ``reference``."""
    order = {"reference": reference, "amount": amount, "currency": currency, "dossier_code": dossier_code,
             "description": f"Phí, lệ phí hồ sơ {dossier_code}", "return_url": return_url}
    if settings.payment_url:
        status, body = post_signed(settings.payment_url, order, settings.connector_secret("payment") or "")
        if status >= 300:
            raise RuntimeError(f"payment provider answered HTTP {status}")
        return str(json.loads(body)["payment_url"])
    sandbox.record(factory, provider="payment", key=reference, recipient=dossier_code, payload=order)
    return sandbox_page
