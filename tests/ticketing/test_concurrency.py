"""Under concurrency: duplicate payment notifications issue tickets once; one admission per leg; offers never
oversell a coach (both backends: SQLite serialises writers, PostgreSQL re-checks after row locks)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from tests.ticketing_support import buy, city, demo, gate_headers, journey, traveler  # noqa: F401


def test_duplicate_payment_notifications_issue_tickets_once(client, login, app, engine, demo):
    from maas.db import session_scope
    from maas.journeys import runtime
    from ticketing.models import Ticket, TicketLeg
    from ticketing.payments import PaymentEvent, apply_payment_event, get_payment

    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler(), traveler("李四")])
    rt = runtime(app)
    with session_scope(engine) as s:
        payment = get_payment(s, order["order_id"])
    now = demo.now

    def deliver(i: int) -> str:
        # half are redeliveries of one event, half distinct events for the same payment (e.g. two sources)
        event = PaymentEvent(event_id=f"evt_{i % 2 and i}", provider="sandbox", kind="payment_succeeded",
                             payment_ref=payment.provider_ref, amount=payment.amount, currency=payment.currency)
        with session_scope(engine) as s:
            return apply_payment_event(s, event, provider=rt.provider, redis_client=app.state.redis,
                                       ledger=rt.ledger, now=now, valid_before_s=7200, valid_after_s=7200)

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(deliver, range(24)))
    assert outcomes.count("ticketed") == 1
    assert set(outcomes) <= {"ticketed", "duplicate", "already_paid"}
    with session_scope(engine) as s:
        tickets = s.exec(select(Ticket).where(Ticket.order_id == order["order_id"])).all()
        legs = s.exec(select(TicketLeg).where(TicketLeg.ticket_id.in_([t.ticket_id for t in tickets]))).all()
        from clearing.models import ClearingLeg

        booked = s.exec(select(ClearingLeg).where(ClearingLeg.order_id == order["order_id"])).all()
    assert len(tickets) == 2 and len(legs) == 6 and len(booked) == 6
    assert sum(x.share for x in booked) == order["total"]["amount"]


def test_fifty_concurrent_scans_admit_exactly_once(client, login, app, engine, demo):
    from maas.db import session_scope
    from maas.journeys import runtime
    from ticketing.gates import GateContext, validate_qr
    from ticketing.models import GateValidation

    _uid, h = login("passenger")
    _offer, order = buy(client, h, journey(client, demo), [traveler()])
    client.post(order["payment"]["confirm_url"], headers=h)
    ticket = client.get("/v1/tickets", headers=h).json()["tickets"][0]
    payload = client.get(f"/v1/tickets/{ticket['ticket_id']}/qr", headers=h).json()["payload"]
    gate_id, _ = gate_headers(engine, "yunxi-bus")
    gate = GateContext(gate_id=gate_id, operator_id="yunxi-bus", stop_id="yx-bus:YXYZ")
    rt = runtime(app)
    now = demo.now

    def scan(_i: int) -> str:
        with session_scope(engine) as s:
            d = validate_qr(s, gate, payload=payload, keys=rt.issuer.public, ledger=rt.ledger, now=now, ttl_s=30)
            return d.result if d.result == "accepted" else d.reason

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(scan, range(50)))
    assert results.count("accepted") == 1 and results.count("already_used") == 49
    with session_scope(engine) as s:
        from clearing.models import Validation as ClearingUse

        rows = s.exec(select(GateValidation).where(GateValidation.ticket_id == ticket["ticket_id"])).all()
        uses = s.exec(select(ClearingUse).where(ClearingUse.ticket_id == ticket["ticket_id"])).all()
    assert len(rows) == 50 and sum(r.result == "accepted" for r in rows) == 1
    assert len(uses) == 1


def test_concurrent_offers_never_oversell_a_coach(client, login, app, engine, demo):
    from maas.db import session_scope
    from ticketing.errors import SoldOut
    from ticketing.offers import create_offer

    _uid, _h = login("passenger")
    it = journey(client, demo)
    coach = next(leg for leg in it["legs"] if leg["mode"] == "COACH")
    snap = app.state.planner.snapshot
    pricer = snap.fares
    capacity = 7

    def offer(i: int) -> int:
        try:
            with session_scope(engine) as s:
                o = create_offer(s, app.state.redis, user_id=f"u{i}", timetable=snap.timetable, itinerary=it,
                                 categories=["adult"] * (1 + i % 2), pricer=pricer,
                                 seat_capacity=lambda trip: capacity if trip == coach["trip_id"] else None,
                                 now=demo.now, ttl_s=600)
                return len(o.quotes)
        except SoldOut:
            return 0

    with ThreadPoolExecutor(max_workers=10) as pool:
        sold = list(pool.map(offer, range(30)))
    assert capacity - 1 <= sum(sold) <= capacity
