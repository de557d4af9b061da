"""Web front ends served by the app under ``/app``: passenger H5, gate simulator, operator and regulator consoles.

Server-rendered Jinja2 pages with a little JavaScript (Alpine.js, Leaflet; vendored, see
static/vendor/VENDORED.md). The pages carry no data of their own: the browser calls the public
JSON API with the signed-in user's bearer token (kept in ``sessionStorage``), so the front ends
have exactly the API's authorization. Only the shell (maas.app) imports this package.
"""

from maas.web.routes import mount

__all__ = ["mount"]
