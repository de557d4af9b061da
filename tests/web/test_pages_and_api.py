"""The /app page shells (no browser) and the two small API routes the front ends added:
``GET /v1/stops`` (stop search) and ``GET /v1/orders/{id}/refund-quote`` (the fee before confirming)."""

from __future__ import annotations

import datetime as dt

from tests.ticketing_support import buy, city, demo, journey, traveler  # noqa: F401


def test_pages_are_served_in_chinese_by_default_and_in_english_on_request(client) -> None:  # noqa: ANN001
    r = client.get("/app/login")
    assert r.status_code == 200 and '<html lang="zh-CN">' in r.text and "登录" in r.text
    assert "script-src 'self' 'unsafe-eval'" in r.headers["content-security-policy"]  # no inline scripts
    assert "'unsafe-inline'" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    r = client.get("/app/login?lang=en")
    assert '<html lang="en">' in r.text and "Sign in" in r.text and r.cookies.get("maas_lang") == "en"
    assert '<html lang="en">' in client.get("/app/passenger").text  # kept in the cookie
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
    for path in ("/app/", "/app/passenger", "/app/passenger/buy", "/app/passenger/tickets", "/app/gate",
                 "/app/operator", "/app/regulator",
                 "/app/static/app.js", "/app/static/vendor/alpinejs-3.17.5/alpine.min.js",
                 "/app/static/vendor/leaflet-1.9.4/leaflet.js"):
        assert client.get(path).status_code == 200, path
    assert "/app/login" not in client.app.openapi()["paths"]  # pages are not part of the API contract


def test_map_tile_url_is_a_setting_and_allowed_by_the_page_policy(settings) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    from maas.app import create_app

    tiled = settings.model_copy(update={"map_tile_url": "https://tiles.example.org/{z}/{x}/{y}.png"})
    with TestClient(create_app(tiled, load_timetable=False)) as c:
        r = c.get("/app/passenger")
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in r.text
    assert "img-src 'self' data: blob: https://tiles.example.org" in r.headers["content-security-policy"]


def test_stop_search_finds_stations_by_part_of_the_name(client, demo) -> None:  # noqa: ANN001, F811
    r = client.get("/v1/stops", params={"q": "青石"})
    assert r.status_code == 200, r.text
    stops = r.json()["stops"]
    assert stops[0]["stop_id"] == "yx-coach:QSX" and stops[0]["name"] == "青石县汽车站"
    names = [s["name"] for s in client.get("/v1/stops", params={"q": "人民广场"}).json()["stops"]]
    assert names[0] == "人民广场"  # an exact start first; the metro station (人民广场站) after it
    assert "人民广场站" in names
    ids = [s["stop_id"] for s in client.get("/v1/stops", params={"q": "站", "limit": 50}).json()["stops"]]
    assert len(ids) == len(set(ids))
    # platforms are reached through their station, not listed on their own
    assert not any(":" in i.split(":", 1)[1] for i in ids)
    # named by its id (the wallet shows ticket legs' stop names so), a platform too, and first
    platform = client.get("/v1/stops", params={"q": "yx-metro:RMGC"}).json()["stops"][0]
    assert platform["stop_id"] == "yx-metro:RMGC" and platform["name"] == "人民广场站"
    assert client.get("/v1/stops", params={"q": "不存在的站名"}).json() == {"stops": []}
    assert client.get("/v1/stops", params={"q": "x", "limit": 0}).status_code == 422


def test_refund_quote_shows_what_the_refund_then_gives(client, login, demo) -> None:  # noqa: ANN001, F811
    _, headers = login("passenger")
    it = journey(client, demo)
    _offer, order = buy(client, headers, it, [traveler()])
    assert client.post(f"/v1/payments/sandbox/{order['order_id']}/confirm", headers=headers).status_code == 200
    ticket = client.get("/v1/tickets", headers=headers).json()["tickets"][0]
    legs = [leg["leg_id"] for leg in ticket["legs"]]
    url = f"/v1/orders/{order['order_id']}/refund-quote"

    # one hour before the first ride: the 2 h tier (5 %) or the last one (10 %) applies
    demo.now = dt.datetime.fromisoformat(ticket["legs"][0]["valid_from"]) + dt.timedelta(hours=1)
    quote = client.get(url, params={"leg_ids": legs}, headers=headers)
    assert quote.status_code == 200, quote.text
    q = quote.json()
    assert q["fee"]["amount"] > 0
    assert q["amount"]["amount"] + q["fee"]["amount"] == sum(x["price"]["amount"] for x in q["legs"])

    _, stranger = login("passenger")  # another passenger's order is not found
    assert client.get(url, params={"leg_ids": legs}, headers=stranger).status_code == 404
    assert client.get(url, params={"leg_ids": ["leg_nope"]}, headers=headers).status_code == 409

    refund = client.post(f"/v1/orders/{order['order_id']}/refunds", json={"leg_ids": legs}, headers=headers).json()
    assert refund["amount"] == q["amount"] and refund["fee"] == q["fee"]  # the quote was what was paid back
    after = client.get(url, params={"leg_ids": legs}, headers=headers)
    assert after.status_code == 409 and after.json()["error"]["code"] == "leg_not_refundable"
