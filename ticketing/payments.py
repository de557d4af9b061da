"""Payments: a provider interface, Stripe (official SDK) and a network-free sandbox.

Every provider notification, whether a verified Stripe webhook or a sandbox
confirmation, becomes a `PaymentEvent` and goes through `apply_payment_event`:

- each event id is applied once (`ProviderEvent` primary key): a duplicate
  delivery changes nothing;
- the order row is locked, so concurrent deliveries serialise; a success
  moves ``pending_payment -> paid -> ticketed`` and issues the tickets in the
  same transaction as the payment record and the ledger's sale entries;
- out-of-order deliveries are harmless: a failure after a success is ignored,
  a success after a failure still pays; a success for an order that expired
  meanwhile is refunded in full (its seats may be gone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ticketing import seats
from ticketing.errors import InvalidWebhook, PaymentProviderError, ProviderNotAvailable
from ticketing.ledger import Ledger
from ticketing.models import Offer, Order, OrderStatus, Payment, ProviderEvent, Refund, new_id
from ticketing.orders import get_order, transition
from ticketing.tickets import issue_tickets


@dataclass(frozen=True)
class ProviderPayment:
    ref: str
    status: str
    client_secret: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    ref: str
    status: str  # succeeded | pending | failed


@dataclass(frozen=True)
class RefundUpdate:
    """One refund's state as the provider reports it: its id there, ours (metadata), and its status."""

    ref: str
    refund_id: str | None
    status: str  # succeeded | pending | failed


@dataclass(frozen=True)
class PaymentEvent:
    """A provider notification in our terms.

    ``kind``: ``payment_succeeded``, ``payment_failed`` or ``refund_updated`` (``refunds`` says which
    refunds, and their states; ``refund_succeeded`` is the older name of the same).
    ``payment_ref``: the provider's payment id (Stripe PaymentIntent id).
    """

    event_id: str
    provider: str
    kind: str
    payment_ref: str
    amount: int | None = None
    currency: str | None = None
    refund_refs: tuple[str, ...] = field(default=())
    refunds: tuple[RefundUpdate, ...] = field(default=())


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, *, order_id: str, amount: int, currency: str) -> ProviderPayment: ...

    def refund(self, *, payment_ref: str, amount: int, refund_id: str) -> ProviderRefund:
        """Refunds ``amount`` with ``refund_id`` as the idempotency key: the same id never pays twice."""
        ...

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        """The provider's refund made for our ``refund_id``, or None if it never made one."""
        ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None: ...


class SandboxProvider:
    """Completes payments without a network (embedded default, demo, tests); refused in production."""

    name = "sandbox"

    def create_payment(self, *, order_id: str, amount: int, currency: str) -> ProviderPayment:
        return ProviderPayment(ref=f"sbx_pi_{order_id}", status="pending")

    def refund(self, *, payment_ref: str, amount: int, refund_id: str) -> ProviderRefund:
        return ProviderRefund(ref=f"sbx_re_{refund_id}", status="succeeded")

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        return None  # the sandbox keeps nothing; its refunds are idempotent by construction

    def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        raise InvalidWebhook("the sandbox provider has no webhooks")

    @staticmethod
    def confirmation(order_id: str, payment_ref: str, amount: int, currency: str) -> PaymentEvent:
        """The event a sandbox confirmation stands for (same path as a verified webhook)."""
        return PaymentEvent(event_id=f"sandbox:{order_id}:succeeded", provider="sandbox", kind="payment_succeeded",
                            payment_ref=payment_ref, amount=amount, currency=currency)


class StripeProvider:
    """Stripe through the official SDK: one PaymentIntent per order, Refunds, signed webhooks.

    ``api_base`` points the SDK elsewhere (tests run a local server speaking Stripe's JSON).
    """

    name = "stripe"

    def __init__(self, *, api_key: str, webhook_secret: str | None, api_base: str | None = None) -> None:
        import stripe

        self._stripe = stripe
        kwargs: dict[str, Any] = {"max_network_retries": 2}
        if api_base:
            kwargs["base_addresses"] = {"api": api_base.rstrip("/")}
        self.client = stripe.StripeClient(api_key, **kwargs)
        self.webhook_secret = webhook_secret

    def create_payment(self, *, order_id: str, amount: int, currency: str) -> ProviderPayment:
        try:
            pi = self.client.v1.payment_intents.create(
                params={"amount": amount, "currency": currency.lower(), "metadata": {"order_id": order_id},
                        "automatic_payment_methods": {"enabled": True}},
                # a retried order creation never makes a second PaymentIntent
                options={"idempotency_key": f"pi-{order_id}"})
        except self._stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the payment: {exc.user_message or 'error'}",
                                       details={"provider": "stripe"}) from exc
        return ProviderPayment(ref=pi.id, status="pending", client_secret=pi.client_secret)

    def refund(self, *, payment_ref: str, amount: int, refund_id: str) -> ProviderRefund:
        try:
            re = self.client.v1.refunds.create(
                params={"payment_intent": payment_ref, "amount": amount, "metadata": {"refund_id": refund_id}},
                options={"idempotency_key": f"re-{refund_id}"})
        except self._stripe.StripeError as exc:
            err = PaymentProviderError(f"Stripe refused the refund: {exc.user_message or 'error'}",
                                       details={"provider": "stripe"})
            # a refusal (4xx but a conflict or rate limit) is final; a network or server error may have paid
            status = getattr(exc, "http_status", None)
            final = isinstance(status, int) and 400 <= status < 500 and status not in (409, 429)
            err.definitive = final  # type: ignore[attr-defined]
            raise err from exc
        return ProviderRefund(ref=re.id, status=_refund_status(re.status))

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        """Searches the payment's refunds for ours (``metadata.refund_id``): reconciliation after a crash."""
        try:
            page = self.client.v1.refunds.list(params={"payment_intent": payment_ref, "limit": 100})
            for re in page.auto_paging_iter():
                metadata = re.metadata.to_dict() if re.metadata is not None else {}
                if metadata.get("refund_id") == refund_id:
                    return ProviderRefund(ref=re.id, status=_refund_status(re.status))
        except self._stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe could not list refunds: {exc.user_message or 'error'}",
                                       details={"provider": "stripe"}) from exc
        return None

    def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        """Verifies the ``Stripe-Signature`` and maps the event; ``None`` for event types we ignore."""
        if not self.webhook_secret:
            raise ProviderNotAvailable("STRIPE_WEBHOOK_SECRET is not configured")
        try:
            event = self._stripe.Webhook.construct_event(payload, signature or "", self.webhook_secret)
        except (ValueError, self._stripe.SignatureVerificationError) as exc:
            raise InvalidWebhook("the webhook signature does not verify") from exc
        # the verified payload as plain JSON (SDK objects are not dicts)
        obj = json.loads(payload)["data"]["object"]
        if event.type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            kind = "payment_succeeded" if event.type.endswith("succeeded") else "payment_failed"
            return PaymentEvent(event_id=event.id, provider="stripe", kind=kind, payment_ref=obj["id"],
                                amount=obj.get("amount"), currency=str(obj.get("currency") or "").upper() or None)
        if event.type == "charge.refunded":
            refunds = obj.get("refunds") or {}
            data = [r for r in (refunds.get("data") or []) if isinstance(r, dict) and r.get("id")]
            refs = tuple(r["id"] for r in data if r.get("status") == "succeeded")
            return PaymentEvent(event_id=event.id, provider="stripe", kind="refund_updated",
                                payment_ref=obj.get("payment_intent") or "", amount=obj.get("amount_refunded"),
                                currency=str(obj.get("currency") or "").upper() or None, refund_refs=refs,
                                refunds=tuple(_refund_update(r) for r in data))
        if event.type in ("refund.updated", "refund.created", "refund.failed"):
            return PaymentEvent(event_id=event.id, provider="stripe", kind="refund_updated",
                                payment_ref=obj.get("payment_intent") or "", amount=obj.get("amount"),
                                currency=str(obj.get("currency") or "").upper() or None,
                                refunds=(_refund_update(obj),))
        return None


def _refund_status(status: str | None) -> str:
    """Stripe's refund states in ours: succeeded, failed (also canceled), else pending."""
    if status == "succeeded":
        return "succeeded"
    if status in ("failed", "canceled"):
        return "failed"
    return "pending"


def _refund_update(obj: dict[str, Any]) -> RefundUpdate:
    metadata = obj.get("metadata") or {}
    ours = metadata.get("refund_id") if isinstance(metadata, dict) else None
    return RefundUpdate(ref=str(obj["id"]), refund_id=str(ours) if ours else None,
                        status=_refund_status(obj.get("status")))


def make_provider(*, environment: str, stripe_api_key: str | None, stripe_webhook_secret: str | None,
                  stripe_api_base: str | None) -> PaymentProvider:
    """Stripe when a key is configured, else the sandbox (never in production)."""
    if stripe_api_key:
        return StripeProvider(api_key=stripe_api_key, webhook_secret=stripe_webhook_secret, api_base=stripe_api_base)
    if environment == "production":
        raise ProviderNotAvailable("no payment provider: set STRIPE_API_KEY (the sandbox is refused in production)")
    return SandboxProvider()


def start_payment(session: Session, provider: PaymentProvider, order: Order) -> Payment:
    """The order's payment at the provider (created once; a retried request finds it)."""
    existing = session.exec(select(Payment).where(Payment.order_id == order.order_id)).first()
    if existing is not None:
        return existing
    pp = provider.create_payment(order_id=order.order_id, amount=order.total_amount, currency=order.currency)
    payment = Payment(payment_id=new_id("pay"), order_id=order.order_id, provider=provider.name, provider_ref=pp.ref,
                      client_secret=pp.client_secret, status="pending", amount=order.total_amount,
                      currency=order.currency)
    session.add(payment)
    session.flush()
    return payment


def get_payment(session: Session, order_id: str) -> Payment | None:
    return session.exec(select(Payment).where(Payment.order_id == order_id)).first()


def payment_view(p: Payment) -> dict[str, Any]:
    out: dict[str, Any] = {"payment_id": p.payment_id, "provider": p.provider, "status": p.status,
                           "amount": {"amount": p.amount, "currency": p.currency}, "provider_ref": p.provider_ref}
    if p.provider == "stripe":
        out["client_secret"] = p.client_secret
    else:
        out["confirm_url"] = f"/v1/payments/sandbox/{p.order_id}/confirm"
    return out


def release_holds(session: Session, redis_client: redis.Redis, order: Order) -> None:
    offer = session.get(Offer, order.offer_id)
    if offer is not None:
        seats.release_all(redis_client, offer.holds)


def extend_holds(session: Session, redis_client: redis.Redis, order: Order, *, now: dt.datetime) -> None:
    """Keeps the offer's seats held for the order's payment window; raises `SoldOut` if a hold was lost."""
    from ticketing.errors import SoldOut

    if not _reacquire(session, redis_client, order, now=now, until=order.expires_at):
        raise SoldOut("the seats held by the offer are gone; ask for a new offer",
                      details={"offer_id": order.offer_id})


def confirm_holds(session: Session, redis_client: redis.Redis, order: Order, *, now: dt.datetime) -> bool:
    """Turns the offer's seat holds into sold seats (kept until after the journey); False if one was lost."""
    offer = session.get(Offer, order.offer_id)
    assert offer is not None
    last_arrival = max(dt.datetime.fromisoformat(leg["arrival"]) for leg in offer.legs)
    return _reacquire(session, redis_client, order, now=now, until=max(last_arrival, now) + dt.timedelta(days=2))


def _reacquire(session: Session, redis_client: redis.Redis, order: Order, *, now: dt.datetime,
               until: dt.datetime) -> bool:
    offer = session.get(Offer, order.offer_id)
    assert offer is not None
    for h in offer.holds:
        got = seats.acquire(redis_client, key=h["key"], service_date=h["service_date"], hold_id=h["hold_id"],
                            seats=len(h["seats"]), capacity=h["capacity"], until=until, now=now)
        if got is None:
            return False
        if sorted(got) != sorted(h["seats"]):
            # the hold had lapsed and other seats were taken: the tickets carry the seats actually held
            h["seats"] = got
            offer.holds = [dict(x) for x in offer.holds]
            session.add(offer)
    return True


def _refund_whole(session: Session, provider: PaymentProvider, order: Order, payment: Payment, *,
                  now: dt.datetime, reason: str) -> None:
    # derived from the payment: a webhook delivered again after a failed commit reuses the idempotency key
    refund_id = "rfd_" + hashlib.sha256(f"whole:{payment.payment_id}".encode()).hexdigest()[:24]
    pr = provider.refund(payment_ref=payment.provider_ref, amount=payment.amount, refund_id=refund_id)
    session.add(Refund(refund_id=refund_id, order_id=order.order_id, leg_ids=[], amount=payment.amount, fee=0,
                       currency=payment.currency, status=pr.status, provider_ref=pr.ref, reason=reason,
                       created_at=now))
    payment.status = "refunded"


def apply_payment_event(session: Session, event: PaymentEvent, *, provider: PaymentProvider,
                        redis_client: redis.Redis, ledger: Ledger, now: dt.datetime, valid_before_s: int,
                        valid_after_s: int) -> str:
    """Applies one provider event once; returns what happened (for logs and the webhook's answer)."""
    try:
        with session.begin_nested():
            session.add(ProviderEvent(event_id=event.event_id, provider=event.provider, type=event.kind,
                                      outcome="received", received_at=now))
            session.flush()
    except IntegrityError:
        return "duplicate"
    record = session.get(ProviderEvent, event.event_id)
    assert record is not None
    outcome = _apply(session, event, provider=provider, redis_client=redis_client, ledger=ledger, now=now,
                     valid_before_s=valid_before_s, valid_after_s=valid_after_s, record=record)
    record.outcome = outcome
    session.add(record)
    session.flush()
    return outcome


def _apply(session: Session, event: PaymentEvent, *, provider: PaymentProvider, redis_client: redis.Redis,
           ledger: Ledger, now: dt.datetime, valid_before_s: int, valid_after_s: int, record: ProviderEvent) -> str:
    payment = session.exec(select(Payment).where(Payment.provider_ref == event.payment_ref)).first()
    if payment is None:
        return "unknown_payment"
    record.order_id = payment.order_id
    order = get_order(session, payment.order_id, for_update=True)
    session.refresh(payment)
    if event.kind in ("refund_succeeded", "refund_updated"):
        from ticketing.refunds import apply_refund_updates

        updates = event.refunds or tuple(RefundUpdate(ref=r, refund_id=None, status="succeeded")
                                         for r in event.refund_refs)
        n = apply_refund_updates(session, order.order_id, updates, redis_client=redis_client, ledger=ledger,
                                 now=now)
        return f"refunds_confirmed:{n}"
    if event.kind == "payment_failed":
        if payment.status == "pending":
            payment.status = "failed"
            payment.updated_at = now
            session.add(payment)
            return "payment_failed"
        return "ignored_failure"
    if event.kind != "payment_succeeded":
        return "ignored"
    if payment.status in ("succeeded", "refunded"):
        return "already_paid"
    if event.amount is not None and (event.amount != payment.amount
                                     or (event.currency and event.currency != payment.currency)):
        return "amount_mismatch"
    payment.status = "succeeded"
    payment.updated_at = now
    session.add(payment)
    if order.status == OrderStatus.pending_payment and order.expires_at <= now:
        transition(order, OrderStatus.expired, now=now)
        release_holds(session, redis_client, order)
    if order.status != OrderStatus.pending_payment:
        _refund_whole(session, provider, order, payment, now=now, reason="order_" + order.status)
        session.add(order)
        return "refunded_late_payment"
    transition(order, OrderStatus.paid, now=now)
    if not confirm_holds(session, redis_client, order, now=now):
        _refund_whole(session, provider, order, payment, now=now, reason="sold_out")
        transition(order, OrderStatus.refunded, now=now)
        session.add(order)
        return "refunded_sold_out"
    issue_tickets(session, order, ledger=ledger, now=now, valid_before_s=valid_before_s,
                  valid_after_s=valid_after_s)
    return "ticketed"
