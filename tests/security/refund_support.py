"""The demo city with Stripe (the real SDK against tests/stripe_server.py): buying, paying, measuring refunds."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.stripe_server import FakeStripe, on_stripe, sign_payload, stripe_server  # noqa: F401
from tests.ticketing_support import buy

WEBHOOK_SECRET = "whsec_test_" + "h1-refunds-secret"


@pytest.fixture
def app(settings, stripe_server):  # noqa: ANN001, ANN201
    """The app on Stripe (overrides the conftest's sandbox app; `demo`, `client`, `login` use it)."""
    from maas.app import create_app

    _fake, base = stripe_server
    return create_app(on_stripe(settings, base, WEBHOOK_SECRET))


def webhook(client: Any, fake: FakeStripe, event_type: str, obj: dict[str, Any]) -> Any:
    payload = fake.event(event_type, obj)
    return client.post("/v1/payments/stripe/webhook", content=payload.encode(),
                       headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET),
                                "Content-Type": "application/json"})


def buy_and_pay(client: Any, fake: FakeStripe, headers: dict[str, str], itinerary: dict[str, Any],
                travelers: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Offer, order, Stripe payment and its signed webhook; returns (offer, the ticketed order)."""
    offer, order = buy(client, headers, itinerary, travelers)
    pi = order["payment"]["provider_ref"]
    r = webhook(client, fake, "payment_intent.succeeded", fake.succeed(pi))
    assert r.status_code == 200 and r.json()["outcome"] == "ticketed", r.text
    got = client.get(f"/v1/orders/{order['order_id']}", headers=headers).json()
    assert got["status"] == "ticketed"
    return offer, got


def provider_refunded(fake: FakeStripe, pi: str) -> int:
    """What Stripe paid back on the payment intent."""
    return sum(r["amount"] for r in fake.refunds.values() if r["payment_intent"] == pi)


def recorded(engine: Any, order_id: str) -> dict[str, int]:
    """Our side: succeeded and pending refund rows of the order, and the ledger's refunds account (all orders)."""
    from sqlmodel import Session, select

    from clearing.models import JournalLine
    from ticketing.models import Refund

    with Session(engine) as s:
        rows = s.exec(select(Refund).where(Refund.order_id == order_id)).all()
        ledger = s.execute(sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount), 0))
                           .where(JournalLine.account_id == "platform:refunds")).scalar_one()
    return {"succeeded": sum(r.amount for r in rows if r.status == "succeeded"),
            "pending": sum(r.amount for r in rows if r.status == "pending"),
            "ledger": -int(ledger), "rows": len(rows)}
