"""Issue 12 item 14: errors and access lines must not leak personal data to the logs.

The attacks, over real HTTP against the app served the way ``maas serve`` serves it (uvicorn, its loggers
routed through ours, access log on): (1) a NUL byte in ``name`` on ``POST /v1/auth/register`` made a 500
whose logged traceback carried the SQL parameters (the name, a non-Chinese phone number, the Argon2 hash);
(2) the access log carried full query strings, a passenger's ``from=lat,lon`` among them. Every line is
captured and rendered by the app's own log handler, exactly as it would reach the log files.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import phonenumbers
import pytest
import uvicorn
from sqlalchemy import event

from maas.logging import mask_text, scrub_text

PHONE = "+1 415 555 2671"  # a US number: the old mask knew Chinese mobiles only
PHONE_DIGITS = "4155552671"
NAME = "Zhang\u0000San Feng"
PASSWORD = "pa55word-secret-x"


@contextmanager
def _serve(app) -> Iterator[str]:  # noqa: ANN001
    """The app on uvicorn as `maas serve` runs it (log_config=None, access log on), in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _rendered(caplog) -> str:  # noqa: ANN001
    """Every captured record as the app's own handler writes it (JSON lines)."""
    ours = next(h for h in logging.getLogger().handlers if getattr(h, "_maas", False))
    return "\n".join(ours.format(r) for r in caplog.records)


def _assert_clean(text: str) -> None:
    for secret in ("Zhang", "San Feng", PHONE_DIGITS, "555 2671", "555-2671", PASSWORD, "$argon2", "argon2id"):
        assert secret not in text, f"{secret!r} leaked into the log:\n{text[:4000]}"


def test_nul_in_name_on_register_leaks_nothing(app, caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.DEBUG), _serve(app) as base:
        r = httpx.post(f"{base}/v1/auth/register", json={"phone": PHONE, "password": PASSWORD, "name": NAME})
    text = _rendered(caplog)
    assert '"path": "/v1/auth/register"' in text, "the request should have been logged"
    _assert_clean(text)


def test_an_unexpected_database_error_logs_its_traceback_without_parameters(app, engine, caplog) -> None:  # noqa: ANN001
    """A DBAPI error on the INSERT of the account (as PostgreSQL raises for a NUL byte or an overflow)."""

    def fail_on_user_insert(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO USERS"):
            raise engine.dialect.loaded_dbapi.DataError("injected failure of the account insert")

    event.listen(engine, "before_cursor_execute", fail_on_user_insert)
    try:
        with caplog.at_level(logging.DEBUG), _serve(app) as base:
            r = httpx.post(f"{base}/v1/auth/register",
                           json={"phone": PHONE, "password": PASSWORD, "name": "Zhang San Feng"})
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_user_insert)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "internal_error", r.text  # the contract's shape, no exception text
    assert "injected" not in r.text
    request_id = r.headers["x-request-id"]
    assert r.json()["error"]["details"]["request_id"] == request_id
    text = _rendered(caplog)
    assert "injected failure of the account insert" in text, "the traceback should have been logged"
    tracebacks = [line for line in text.splitlines() if "injected failure" in line]
    assert len(tracebacks) == 1, "logged once (by the app), not again by the server"
    assert request_id in tracebacks[0] and '"unhandled_error"' in tracebacks[0], tracebacks[0][:300]
    assert "INSERT INTO users" in text, "the failing statement (without its values) helps debugging"
    _assert_clean(text)


def test_query_strings_and_coordinates_are_not_logged(app, caplog) -> None:  # noqa: ANN001
    params = {"from": "22.319303,114.169361", "to": "22.278300,114.174700",
              "depart_at": "2026-10-07T08:00:00+08:00", "access_token": "tok-Secret-123456"}
    with caplog.at_level(logging.DEBUG), _serve(app) as base:
        httpx.get(f"{base}/v1/plan", params=params)
        httpx.get(f"{base}/v1/nowhere?lat=22.319303&lon=114.169361&token=tok-Secret-123456")
    text = _rendered(caplog)
    assert '"path": "/v1/plan"' in text
    for leaked in ("22.319303", "114.169361", "22.3193", "114.1693", "22.2783", "tok-Secret", "depart_at="):
        assert leaked not in text, f"{leaked!r} leaked into the log:\n{text[:3000]}"


# --- the text scrubber: the safety net under everything that is logged --------------------------------------

def _example_numbers() -> Iterator[tuple[str, str, str]]:
    formats = {"E164": phonenumbers.PhoneNumberFormat.E164,
               "INTERNATIONAL": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
               "NATIONAL": phonenumbers.PhoneNumberFormat.NATIONAL}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt_name, fmt in formats.items():
                yield region, fmt_name, phonenumbers.format_number(number, fmt)


def test_every_phone_format_of_every_region_is_masked() -> None:
    checked, leaks = 0, []
    for region, fmt, text in _example_numbers():
        digits = "".join(ch for ch in text if ch.isdigit())
        national = str(phonenumbers.parse(text, region).national_number)
        if fmt == "NATIONAL" and len(digits) < 7:
            continue  # 4-6 digit local numbers (a few islands) are indistinguishable from amounts and counts
        masked = mask_text(f"call {text} now")
        checked += 1
        if national in "".join(ch for ch in masked if ch.isdigit()) or text in masked:
            leaks.append(f"{region} {fmt}: {text!r} -> {masked!r}")
    assert checked > 1000
    assert not leaks, f"{len(leaks)} of {checked} numbers not masked:\n" + "\n".join(leaks[:40])


@pytest.mark.parametrize("text", [
    "+14155552671", "+1 (415) 555-2671", "(415) 555-2671", "415.555.2671", "020 7946 0958", "+44 20 7946 0958",
    "0755-8888 6666", "+86 138 0013 8000", "13800138000", "0049 30 901820", "+852 2123 4567", "tel:+81-3-1234-5678",
])
def test_common_phone_formats_are_masked(text: str) -> None:
    masked = mask_text(f"a {text} b")
    assert sum(ch.isdigit() for ch in masked) <= 1, masked  # at most the "tel:" form's stray nothing


@pytest.mark.parametrize("text", [
    "2026-12-03T07:51:49.123456Z", "2026-12-03", "request_id 3f9a2c1d8e7b6a50", "amount 5880 fen",
    "duration 12.34 ms", "ord_7Hq2KpX9", "HTTP/1.1 200", "seq 1234",
])
def test_ordinary_values_are_not_masked(text: str) -> None:
    assert mask_text(text) == text


def test_database_error_text_loses_values_but_keeps_the_statement() -> None:
    raw = ('(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "users_phone_key"\n'
           "DETAIL:  Key (phone)=(+14155552671) already exists.\n"
           "[SQL: INSERT INTO users (phone, name, password_hash) VALUES (%(phone)s, %(name)s, %(password_hash)s)]\n"
           "[parameters: {'phone': '+14155552671', 'name': 'Zhang San', 'password_hash': '$argon2id$v=19$m=1'}]\n"
           "(Background on this error at: https://sqlalche.me/e/20/gkpj)\n"
           'psycopg.errors.NotNullViolation: null value in column "x" violates not-null constraint\n'
           "DETAIL:  Failing row contains (u_1, Zhang San, +14155552671, null).")
    scrubbed = scrub_text(raw)
    assert "INSERT INTO users" in scrubbed and "users_phone_key" in scrubbed
    for leaked in ("4155552671", "Zhang", "argon2"):
        assert leaked not in scrubbed, scrubbed
