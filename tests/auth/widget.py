"""What the widget does to sign in from a shop's own site, over plain HTTP: make a verifier, sign in in the
popup (the loopback dev sign-in), read the code the popup posts, trade it for a widget token, call `/api/*`."""

from __future__ import annotations

import json
import re
import secrets

import httpx

from shine_mcp.auth.widget_tokens import challenge_of
from tests.auth.support import Browser

SHOP = "http://localhost:8001"
OTHER_SHOP = "http://localhost:8002"
STRANGER = "http://localhost:9999"
HANDOFF = re.compile(r'<script type="application/json" id="handoff">(.*?)</script>', re.S)


class Popup:
    """What the widget does: a verifier made before the popup opens, and the popup's sign-in."""

    def __init__(self, base: str, browser: Browser, origin: str = SHOP) -> None:
        self.base, self.browser, self.origin = base, browser, origin
        self.verifier = secrets.token_urlsafe(48)
        self.state = secrets.token_urlsafe(16)

    def url(self, origin: str | None = None) -> str:
        query = httpx.QueryParams(
            origin=origin or self.origin, challenge=challenge_of(self.verifier), state=self.state
        )
        return f"{self.base}/auth/widget/start?{query}"

    async def code(self) -> str:
        """Sign in in the popup (the loopback dev sign-in) and read what it posts to the widget."""
        page = await self.browser.go(self.url())
        assert isinstance(page, httpx.Response) and page.status_code == 200, page
        handed = json.loads(HANDOFF.search(page.text).group(1))  # type: ignore[union-attr]
        assert handed["origin"] == self.origin and handed["state"] == self.state
        assert handed["type"] == "shine:signed-in"
        return str(handed["code"])


async def exchange(base: str, code: str, verifier: str, origin: str = SHOP, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:  # the shop's page: no Shine cookies
        return await http.post(
            f"{base}/auth/widget/token",
            json={"code": code, "verifier": verifier},
            headers={"Origin": origin, **headers},
        )


async def api(base: str, token: str, origin: str | None = SHOP, path: str = "/api/chat") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} | ({"Origin": origin} if origin else {})
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(f"{base}{path}", headers=headers)


async def signed_in_token(base: str, browser: Browser, origin: str = SHOP) -> str:
    popup = Popup(base, browser, origin)
    response = await exchange(base, await popup.code(), popup.verifier, origin)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
