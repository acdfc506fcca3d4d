"""Signed JSON over HTTP: how motcua talks to providers and how sandboxes call motcua back."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 of the raw body, hex: the X-Signature header of every provider message."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(url: str, payload: dict[str, Any], secret: str, *, timeout: float = 10) -> tuple[int, bytes]:
    """POST ``payload`` as JSON with its signature; returns (HTTP status, body). Only http(s) URLs."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    body = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - scheme checked
        "Content-Type": "application/json", "X-Signature": sign(secret, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
