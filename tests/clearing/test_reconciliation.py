"""POST /v1/reconciliations: an operator's CSV of validations against ours."""

from __future__ import annotations

import datetime as dt

from maas.db import session_scope
from tests.clearing.builders import at, sale, use

D = dt.date(2026, 3, 2)


def _seed(engine):  # noqa: ANN001, ANN202
    with session_scope(engine) as s:
        t1 = sale(s, 500, [("bus", 1, 200), ("metro", 1, 400)], day=D)   # bus share 167
        t2 = sale(s, 200, [("bus", 1, 200)], day=D)
        t3 = sale(s, 200, [("bus", 1, 200)], day=D)
        t4 = sale(s, 200, [("bus", 1, 200)], day=D)
        use(s, t1, 0, when=at(D, 8), gate="g1")
        use(s, t1, 1, when=at(D, 8), gate="m1")
        use(s, t2, 0, when=at(D, 9), gate="g1")
        use(s, t3, 0, when=at(D, 10), gate="g2")
        use(s, t4, 0, when=at(D, 11), gate="g1")
    return t1, t2, t3, t4


def test_report_lists_matches_mismatches_and_both_sides(client, login, engine) -> None:  # noqa: ANN001
    t1, t2, t3, t4 = _seed(engine)
    _, bus = login("operator", "bus")
    body = "\n".join([
        "leg_id,ticket_id,gate_id,validated_at,amount",
        f"{t1.legs[0].leg_id},,g1,2026-03-02T08:01:00+08:00,167",          # matched (1 min apart, tolerated)
        f",{t2.ticket_id},g1,2026-03-02T09:00:00+08:00,150",                # amount mismatch, by ticket id
        f"{t3.legs[0].leg_id},,g9,2026-03-02T12:00:00+08:00,200",          # gate and time mismatch
        "ghost-leg,,g1,2026-03-02T09:30:00+08:00,200",                      # only theirs
        f"{t1.legs[1].leg_id},,m1,2026-03-02T08:00:00+08:00,333",          # metro's leg: not theirs to report
        "bad-row,,g1,yesterday,200",                                        # malformed time
        "x,,g1,2026-03-02T09:30:00,200",                                    # no offset
        "y,,g1,2026-03-02T09:30:00+08:00,1.5",                              # not minor units
        "z,,g1",                                                            # wrong field count
    ]) + "\n"
    r = client.post("/v1/reconciliations", content=body.encode(), headers={**bus, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["rows"] == 9 and rep["matched"] == 1
    problems = {m["leg_id"]: {p["field"] for p in m["problems"]} for m in rep["mismatches"]}
    assert problems == {t2.legs[0].leg_id: {"amount"}, t3.legs[0].leg_id: {"gate_id", "validated_at"}}
    assert {x["leg_id"] for x in rep["only_theirs"]} == {"ghost-leg", t1.legs[1].leg_id}
    assert [x["leg_id"] for x in rep["only_ours"]] == [t4.legs[0].leg_id]
    assert [m["line"] for m in rep["malformed"]] == [7, 8, 9, 10]
    assert rep["matched"] + len(rep["mismatches"]) + len(rep["only_theirs"]) + len(rep["malformed"]) == rep["rows"]


def test_multipart_upload_and_bad_uploads(client, login, engine) -> None:  # noqa: ANN001
    t1, *_ = _seed(engine)
    _, bus = login("operator", "bus")
    csv_text = f"leg_id,validated_at\n{t1.legs[0].leg_id},2026-03-02T08:00:00+08:00\n"
    r = client.post("/v1/reconciliations?window_start=2026-03-02&window_end=2026-03-03",
                    files={"file": ("ours.csv", csv_text, "text/csv")}, headers=bus)
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == 1 and len(r.json()["only_ours"]) == 3
    r = client.post("/v1/reconciliations", content=b"what,ever\n1,2\n", headers={**bus, "Content-Type": "text/csv"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_csv"
    r = client.post("/v1/reconciliations", json={"rows": []}, headers=bus)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    _, admin = login("admin")
    r = client.post("/v1/reconciliations", content=csv_text.encode(), headers={**admin, "Content-Type": "text/csv"})
    assert r.status_code == 403
