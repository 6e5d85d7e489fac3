"""Signed return links: the token Shine adds to its own checkout success and cancel URLs, so the page a
shopper comes back to can show their order without a sign-in, and nobody else's order to anyone.

The token is `<expiry>.<HMAC-SHA256(order id, expiry)>` under a subkey of the server key made for this
purpose only (see `shine_mcp.auth.keys`), so it cannot be replayed as any other signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from functools import lru_cache

from shine_mcp.auth.keys import derive, master_key
from shine_mcp.config import Settings

RETURN_LINK_TTL = timedelta(days=7)  # a checkout session lasts a day at most; the page stays readable a week
TOKEN_PARAM = "sig"
MAX_TOKEN_LENGTH = 64


@lru_cache(maxsize=8)
def _key(master: bytes) -> bytes:
    return derive(master, "checkout-return-link")


def _mac(settings: Settings, order_id: str, expires: int) -> str:
    digest = hmac.new(_key(master_key(settings)), f"{order_id}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def sign_return(order_id: str, settings: Settings, now: datetime) -> str:
    """The token for `order_id`'s return pages, valid for `RETURN_LINK_TTL` from `now`."""
    expires = int((now + RETURN_LINK_TTL).timestamp())
    return f"{expires}.{_mac(settings, order_id, expires)}"


def return_link_ok(order_id: str, token: str | None, settings: Settings, now: datetime) -> bool:
    """Whether `token` was made by this server for `order_id` and has not expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or token.count(".") != 1:
        return False
    expires_text, mac = token.split(".")
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(settings, order_id, expires), mac):
        return False
    return expires >= now.timestamp()
