"""The service's door: which hosts it answers, which origins may change its state, and the
security headers on every answer.

A server on localhost is reachable from every web page its user opens. Three checks keep
those pages out, before any handler runs:

- **Host**: the `Host` header must name this server: a loopback name, the address it is bound
  to, or one given with ``--allowed-host`` (``*.example.com`` matches its subdomains). A page
  of ``evil.example`` whose name an attacker re-points at 127.0.0.1 (DNS rebinding) sends
  ``Host: evil.example`` and gets 400.
- **Origin**: a request that changes state (POST, PUT, PATCH, DELETE) coming from a browser
  page of another origin (``Sec-Fetch-Site: cross-site`` or ``same-site``, or an ``Origin``
  that is not this server's) is refused with 403, unless it carries the API key or its origin
  was given with ``--cors-origin``. Clients that are not browsers send neither header.
- **CORS** is off unless ``--cors-origin`` names the pages allowed to call the API.

Every answer carries a Content-Security-Policy (this origin only; no frames), ``nosniff``,
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``. The API documentation pages
(swagger-ui and ReDoc, served from files installed with the package) start with an inline
script, which their policy allows, and nothing else does.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: Names that always mean this machine.
LOOPBACK = ("localhost", "127.0.0.1", "::1")
#: Addresses that bind every interface: they name no host a client would use.
WILDCARD = ("", "0.0.0.0", "::")
#: Methods that change the server's state.
CHANGES_STATE = ("POST", "PUT", "PATCH", "DELETE")
#: Pages whose framework starts them with an inline script (swagger-ui, ReDoc).
DOCS_PAGES = ("/docs", "/redoc")

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def host_name(header: str) -> str:
    """The host of a `Host` header, without its port or IPv6 brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Door:
    """The checks and headers above, for a server bound to `bind` with `api_key` (or none)."""

    def __init__(
        self, bind: str, allowed_hosts: Iterable[str], cors_origins: Iterable[str], api_key: str | None
    ) -> None:
        names = {*LOOPBACK, *(h.strip().lower() for h in allowed_hosts if h.strip())}
        if bind.strip().lower() not in WILDCARD:
            names.add(host_name(bind))
        self.hosts = {n for n in names if not n.startswith("*.")}
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # "*.example.com" -> ".example.com"
        self.cors_origins = {o.rstrip("/") for o in cors_origins}
        self.api_key = api_key

    def serves(self, host: str) -> bool:
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def has_key(self, request: Request) -> bool:
        """Whether the request carries the API key (X-API-Key, or Authorization: Bearer)."""
        if self.api_key is None:
            return False
        given = (
            request.headers.get("x-api-key")
            or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        )
        return bool(given) and hmac.compare_digest(given.encode(), self.api_key.encode())

    def refusal(self, request: Request) -> JSONResponse | None:
        """The answer to a request that may not pass, or None."""
        host = host_name(request.headers.get("host", ""))
        if not self.serves(host):
            return JSONResponse(
                {
                    "detail": f"this server does not answer for host {host!r}; "
                    "start it with --allowed-host NAME for each name its clients use"
                },
                400,
            )
        if request.method in CHANGES_STATE and self.foreign(request) and not self.has_key(request):
            return JSONResponse(
                {
                    "detail": "a page of another site may not submit or delete jobs here "
                    "(send the API key, or start the server with --cors-origin ORIGIN)"
                },
                403,
            )
        return None

    def foreign(self, request: Request) -> bool:
        """Whether a browser sent the request from a page of another origin than this server's."""
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") in self.cors_origins:
            return False
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return True
        if origin is None:
            return False
        return (
            origin == "null"
            or urlsplit(origin).netloc.lower() != request.headers.get("host", "").strip().lower()
        )

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = self.refusal(request) or await call_next(request)
        docs = request.url.path in DOCS_PAGES
        response.headers["Content-Security-Policy"] = DOCS_POLICY if docs else PAGE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


__all__ = ["Door", "host_name"]
