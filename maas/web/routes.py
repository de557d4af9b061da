"""The pages under ``/app`` and their static files. HTML shells only: data comes from the JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from maas.web.i18n import LANGUAGES, messages, pick_language

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(prefix="/app", include_in_schema=False)

#: page name -> (template, title key, front end)
PAGES: dict[str, tuple[str, str, str]] = {
    "": ("index.html", "app.title", "home"),
    "login": ("login.html", "login.title", "home"),
    "passenger": ("passenger_plan.html", "plan.title", "passenger"),
    "passenger/buy": ("passenger_buy.html", "buy.title", "passenger"),
    "passenger/tickets": ("passenger_wallet.html", "wallet.title", "passenger"),
    "gate": ("gate.html", "gate.title", "gate"),
    "operator": ("operator.html", "op.title", "operator"),
    "regulator": ("regulator.html", "reg.title", "regulator"),
}


#: Stripe.js and its frames, allowed only where Stripe is configured (docs.stripe.com/security/guide#content-security-policy)
_STRIPE_CSP = {"script-src": "https://js.stripe.com", "frame-src": "https://js.stripe.com https://hooks.stripe.com",
               "connect-src": "https://api.stripe.com"}


def stripe_publishable_key(settings: Any) -> str | None:
    """The key the buy page gives Stripe.js, when Stripe is the server's rail; else None (sandbox)."""
    return settings.stripe_publishable_key if settings.stripe_api_key and settings.stripe_publishable_key else None


def _csp(tile_url: str, stripe: bool = False) -> str:
    img = "'self' data: blob:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            host = parts.netloc.split(".", 1)[1] if "{s}" in tile_url and "." in parts.netloc else parts.netloc
            img += f" {parts.scheme}://{'*.' if '{s}' in tile_url else ''}{host}"
    # Alpine.js evaluates its attribute expressions with Function(): 'unsafe-eval', but no inline scripts.
    extra = {k: " " + v for k, v in _STRIPE_CSP.items()} if stripe else {k: "" for k in _STRIPE_CSP}
    frames = f"frame-src 'self'{extra['frame-src']}; " if stripe else ""
    return (f"default-src 'self'; script-src 'self' 'unsafe-eval'{extra['script-src']}; "
            f"style-src 'self' 'unsafe-inline'; img-src {img}; connect-src 'self'{extra['connect-src']}; {frames}"
            f"frame-ancestors 'self'; base-uri 'none'; form-action 'self'")


def _render(request: Request, page: str) -> Response:
    template, title_key, front = PAGES[page]
    query_lang = request.query_params.get("lang")
    lang = pick_language(query_lang, request.cookies.get("maas_lang"), request.headers.get("accept-language"))
    settings = request.app.state.settings
    texts = messages(lang)
    context: dict[str, Any] = {
        "lang": lang, "languages": LANGUAGES, "t": texts, "title": texts.get(title_key, title_key),
        "front": front, "page": page,
        "page_data": {"lang": lang, "messages": texts, "tile_url": settings.map_tile_url,
                      "tile_attribution": settings.map_tile_attribution, "qr_ttl_s": settings.qr_ttl_s,
                      "face_retention_days": settings.face_retention_days,
                      "stripe_publishable_key": stripe_publishable_key(settings)},
    }
    response = templates.TemplateResponse(request, template, context)
    response.headers["Content-Security-Policy"] = _csp(settings.map_tile_url,
                                                       stripe=page == "passenger/buy" and bool(stripe_publishable_key(settings)))
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    if query_lang in LANGUAGES:
        response.set_cookie("maas_lang", lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def _page_route(page: str) -> None:
    async def show(request: Request) -> Response:
        return _render(request, page)

    router.add_api_route(f"/{page}", show, methods=["GET"], response_class=HTMLResponse, name=f"web:{page or 'home'}")


for _page in PAGES:
    _page_route(_page)


def mount(app: FastAPI) -> None:
    """Serves the front ends under /app (pages) and /app/static (assets)."""

    @app.get("/app", include_in_schema=False)
    async def app_root() -> RedirectResponse:
        return RedirectResponse("/app/", status_code=307)

    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=str(_HERE / "static")), name="web-static")
