"""The security headers every answer carries, as one ASGI middleware.

Every response, JSON, the page, the docs, errors and event streams alike, gets:

- `X-Content-Type-Options: nosniff`: a browser takes the declared type (a JSON body is never
  run as a script or shown as HTML);
- `X-Frame-Options: DENY` (and CSP `frame-ancestors 'none'`): no page frames the service;
- `Referrer-Policy: no-referrer`: job ids in URLs do not leak to other sites;
- a `Content-Security-Policy` that allows nothing (`default-src 'none'`), unless the route set
  its own: the web page (`service.api.routes.page.CSP`) and the docs (`service.api.routes.docs`)
  declare what they load, all of it from the service itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An API answer loads nothing and may be framed by no one.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CSP,
}


class SecurityHeaders:
    """Add `SECURITY_HEADERS` to every HTTP response, keeping any the route set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [
            (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _value in message.get("headers", [])}
                missing = [(name, value) for name, value in self.headers if name not in present]
                message["headers"] = [*message.get("headers", []), *missing]
            await send(message)

        await self.app(scope, receive, send_with_headers)
