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
from collections.abc import Mapping
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
    """A payment opened at the provider for one order.

    ``ref``: the provider-side reference our `Payment.provider_ref` keeps (a Stripe PaymentIntent id; for
    WeChat Pay and Alipay our own ``out_trade_no``, which their notifications carry).
    ``client_params``: what the app or mini-program needs to complete the payment (e.g. the signed
    arguments of ``wx.requestPayment``, Alipay's ``trade_no`` for ``my.tradePay``, or an H5 pay URL).
    """

    ref: str
    status: str
    client_secret: str | None = None
    client_params: dict[str, Any] | None = None


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

    ``kind``: ``payment_succeeded``, ``payment_failed`` (this attempt failed; the passenger may try again),
    ``payment_closed`` (the payment can no longer be made: the order is cancelled and its seats released) or
    ``refund_updated`` (``refunds`` says which refunds, and their states; ``refund_succeeded`` is the older
    name of the same).
    ``payment_ref``: the provider's payment id (Stripe PaymentIntent id).
    """

    event_id: str
    provider: str
    kind: str
    payment_ref: str
    amount: int | None = None
    #: the provider's own transaction id (WeChat ``transaction_id``, Alipay ``trade_no``), when it has one
    provider_txn: str | None = None
    #: when the provider took the money (WeChat ``success_time``, Alipay ``gmt_payment``): the bill's time
    occurred_at: dt.datetime | None = None
    currency: str | None = None
    refund_refs: tuple[str, ...] = field(default=())
    refunds: tuple[RefundUpdate, ...] = field(default=())


@dataclass(frozen=True)
class BillLine:
    """One row of a provider's daily bill (WeChat ``tradebill``, Alipay ``bill``) in our terms.

    ``line``: its line number in the file (1-based), for the mismatch report. ``kind``: ``payment`` or
    ``refund``. ``payment_ref``: our reference at the provider (``out_trade_no``); ``refund_id``: our refund id
    (``out_refund_no`` / ``out_request_no``) for refunds. ``amount`` in minor units, always positive.
    """

    line: int
    kind: str
    payment_ref: str
    amount: int
    currency: str
    provider_txn: str | None = None
    refund_id: str | None = None
    at: dt.datetime | None = None


class PaymentProvider(Protocol):
    """One payment rail. Everything above it (orders, refunds, the ledger) is the same for every rail."""

    name: str

    def create_payment(self, *, order_id: str, amount: int, currency: str, payer: str | None = None,
                       description: str = "", expires_at: dt.datetime | None = None) -> ProviderPayment:
        """Opens the order's payment; the same ``order_id`` never opens two (idempotent).

        ``payer``: the payer's id at the provider when the rail needs one (WeChat JSAPI ``openid``, Alipay
        mini-program ``buyer_id``); ``expires_at``: when the provider must stop accepting it.
        """
        ...

    def refund(self, *, payment_ref: str, amount: int, refund_id: str, total: int | None = None) -> ProviderRefund:
        """Refunds ``amount`` of the payment (``total``: what was paid) with ``refund_id`` as the
        idempotency key: the same id never pays twice."""
        ...

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        """The provider's refund made for our ``refund_id``, or None if it never made one."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        """Verifies a notification (signature, and decryption where the rail encrypts it) and maps it.

        Raises `InvalidWebhook` when it does not verify; ``None`` for notifications we ignore.
        ``headers`` are the request's headers (case-insensitive mapping).
        """
        ...

    def query_payment(self, payment_ref: str) -> PaymentEvent | None:
        """Asks the provider for the payment's state (a lost notification): the event it stands for,
        or None while it is still open. Event ids are stable, so a repeated query applies once."""
        ...

    def close_payment(self, payment_ref: str) -> None:
        """Stops the provider accepting the payment (the order expired or was cancelled); idempotent."""
        ...


class BillSource(Protocol):
    """A provider that publishes daily bills (for `ticketing.bills.reconcile_bill`)."""

    name: str

    def download_bill(self, day: dt.date) -> bytes:
        """The raw bill file of ``day`` (the provider's calendar day) as the provider serves it."""
        ...

    def parse_bill(self, raw: bytes) -> list[BillLine]:
        """The bill's payment and refund rows; raises ValueError with a line number on a malformed file."""
        ...


class SandboxProvider:
    """Completes payments without a network (embedded default, demo, tests); refused in production."""

    name = "sandbox"

    def create_payment(self, *, order_id: str, amount: int, currency: str, payer: str | None = None,
                       description: str = "", expires_at: dt.datetime | None = None) -> ProviderPayment:
        return ProviderPayment(ref=f"sbx_pi_{order_id}", status="pending")

    def refund(self, *, payment_ref: str, amount: int, refund_id: str, total: int | None = None) -> ProviderRefund:
        return ProviderRefund(ref=f"sbx_re_{refund_id}", status="succeeded")

    def find_refund(self, *, payment_ref: str, refund_id: str) -> ProviderRefund | None:
        return None  # the sandbox keeps nothing; its refunds are idempotent by construction

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        raise InvalidWebhook("the sandbox provider has no webhooks")

    def query_payment(self, payment_ref: str) -> PaymentEvent | None:
        return None  # a sandbox payment completes only by its confirmation

    def close_payment(self, payment_ref: str) -> None:
        return None

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

    def create_payment(self, *, order_id: str, amount: int, currency: str, payer: str | None = None,
                       description: str = "", expires_at: dt.datetime | None = None) -> ProviderPayment:
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

    def refund(self, *, payment_ref: str, amount: int, refund_id: str, total: int | None = None) -> ProviderRefund:
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

    def query_payment(self, payment_ref: str) -> PaymentEvent | None:
        """The PaymentIntent's state: succeeded, canceled (closed), or None while the passenger may still pay."""
        try:
            pi = self.client.v1.payment_intents.retrieve(payment_ref)
        except self._stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe could not find the payment: {exc.user_message or 'error'}",
                                       details={"provider": "stripe"}) from exc
        kind = {"succeeded": "payment_succeeded", "canceled": "payment_closed"}.get(pi.status)
        if kind is None:
            return None
        return PaymentEvent(event_id=f"stripe:query:{pi.id}:{pi.status}", provider="stripe", kind=kind,
                            payment_ref=pi.id, amount=pi.amount, currency=str(pi.currency or "").upper() or None)

    def close_payment(self, payment_ref: str) -> None:
        """Cancels the PaymentIntent (a paid or already canceled one is left as it is)."""
        try:
            pi = self.client.v1.payment_intents.retrieve(payment_ref)
            if pi.status not in ("succeeded", "canceled", "processing"):
                self.client.v1.payment_intents.cancel(payment_ref)
        except self._stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe could not cancel the payment: {exc.user_message or 'error'}",
                                       details={"provider": "stripe"}) from exc

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        """Verifies the ``Stripe-Signature`` and maps the event; ``None`` for event types we ignore."""
        if not self.webhook_secret:
            raise ProviderNotAvailable("STRIPE_WEBHOOK_SECRET is not configured")
        signature = headers.get("stripe-signature") or ""
        try:
            event = self._stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
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


#: The payment methods an order may name, in the order a deployment prefers them by default.
PAYMENT_METHODS = ("stripe", "wechat", "alipay", "sandbox")


class Providers:
    """The deployment's payment rails by name; each order names one (``payment_method``).

    Notifications, refunds and reconciliation go to the rail that took the payment (`for_payment`),
    so orders paid through different rails coexist, and a rail switched off later can still refund
    what it took, as long as it is configured.
    """

    def __init__(self, providers: Mapping[str, PaymentProvider], default: str) -> None:
        if default not in providers:
            raise ProviderNotAvailable(f"the default payment method {default!r} is not configured")
        self._providers = dict(providers)
        self.default = default

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m for m in PAYMENT_METHODS if m in self._providers)

    def get(self, name: str | None = None) -> PaymentProvider:
        """The rail called ``name`` (the default when None); `PaymentMethodUnavailable` if not configured."""
        from ticketing.errors import PaymentMethodUnavailable

        key = name or self.default
        provider = self._providers.get(key)
        if provider is None:
            raise PaymentMethodUnavailable(
                f"payment method {key!r} is not available here; use one of: {', '.join(self.names)}",
                details={"payment_method": key, "available": list(self.names)})
        return provider

    def find(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    def for_payment(self, payment: Payment) -> PaymentProvider:
        """The rail that took ``payment`` (refunds and queries must go back to it)."""
        provider = self._providers.get(payment.provider)
        if provider is None:
            raise ProviderNotAvailable(f"the payment was made with {payment.provider!r}, which is not configured "
                                       "on this deployment", details={"provider": payment.provider})
        return provider


def make_providers(*, environment: str, configured: Mapping[str, PaymentProvider],
                   default: str | None = None, sandbox: bool | None = None) -> Providers:
    """The rails configured by the deployment, and the sandbox.

    The sandbox is offered when ``sandbox`` is true, or (``None``) when no real rail is configured; never
    in production. The default is ``default`` when given, else the first available of `PAYMENT_METHODS`
    (Stripe first, as before).
    """
    rails = dict(configured)
    if environment == "production":
        if sandbox or default == "sandbox":
            raise ProviderNotAvailable("the sandbox payment provider is refused in production")
    elif sandbox or (sandbox is None and (not rails or default == "sandbox")):
        rails["sandbox"] = SandboxProvider()
    if not rails:
        raise ProviderNotAvailable("no payment provider: configure Stripe, WeChat Pay or Alipay "
                                   "(the sandbox is refused in production)")
    if default is not None and default not in rails:
        raise ProviderNotAvailable(f"the default payment method {default!r} is not configured")
    return Providers(rails, default or next(m for m in PAYMENT_METHODS if m in rails))


def start_payment(session: Session, provider: PaymentProvider, order: Order, *, payer: str | None = None,
                  description: str = "") -> Payment:
    """The order's payment at the provider (created once; a retried request finds it)."""
    existing = session.exec(select(Payment).where(Payment.order_id == order.order_id)).first()
    if existing is not None:
        return existing
    if provider.name != order.provider:
        raise ProviderNotAvailable(f"the order is to be paid with {order.provider!r}, not {provider.name!r}")
    pp = provider.create_payment(order_id=order.order_id, amount=order.total_amount, currency=order.currency,
                                 payer=payer, description=description, expires_at=order.expires_at)
    payment = Payment(payment_id=new_id("pay"), order_id=order.order_id, provider=provider.name, provider_ref=pp.ref,
                      client_secret=pp.client_secret, client_params=pp.client_params, status="pending",
                      amount=order.total_amount, currency=order.currency)
    session.add(payment)
    session.flush()
    return payment


def get_payment(session: Session, order_id: str) -> Payment | None:
    return session.exec(select(Payment).where(Payment.order_id == order_id)).first()


def payment_view(p: Payment) -> dict[str, Any]:
    """The payment as its owner sees it: what to call to pay, by rail (docs/payments.md)."""
    out: dict[str, Any] = {"payment_id": p.payment_id, "provider": p.provider, "payment_method": p.provider,
                           "status": p.status, "amount": {"amount": p.amount, "currency": p.currency},
                           "provider_ref": p.provider_ref,
                           "paid_at": p.paid_at.isoformat() if p.paid_at else None}
    if p.provider == "stripe":
        out["client_secret"] = p.client_secret
    elif p.provider == "sandbox":
        out["confirm_url"] = f"/v1/payments/sandbox/{p.order_id}/confirm"
    if p.client_params is not None and p.status == "pending":
        out["client_params"] = dict(p.client_params)
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
    pr = provider.refund(payment_ref=payment.provider_ref, amount=payment.amount, refund_id=refund_id,
                         total=payment.amount)
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
    if payment.provider != event.provider or provider.name != payment.provider:
        # one rail's event never settles another rail's payment (e.g. a sandbox confirmation of a WeChat order)
        return "provider_mismatch"
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
    if event.kind in ("payment_failed", "payment_closed"):
        if payment.status not in ("pending", "failed", "cancelled"):
            return "ignored_failure"  # paid (or refunded) already: a late failure changes nothing
        payment.status = "failed" if event.kind == "payment_failed" else "closed"
        payment.updated_at = now
        session.add(payment)
        if event.kind == "payment_closed" and order.status == OrderStatus.pending_payment:
            # the passenger can no longer pay: the seats go back on sale now, not at the order's expiry
            transition(order, OrderStatus.cancelled, now=now)
            session.add(order)
            release_holds(session, redis_client, order)
        return "payment_closed" if event.kind == "payment_closed" else "payment_failed"
    if event.kind != "payment_succeeded":
        return "ignored"
    if payment.status in ("succeeded", "refunded"):
        return "already_paid"
    if event.amount is not None and (event.amount != payment.amount
                                     or (event.currency and event.currency != payment.currency)):
        return "amount_mismatch"
    payment.status = "succeeded"
    payment.updated_at = now
    # stored in UTC: SQLite keeps no offset, so a +08:00 time would come back eight hours off
    payment.paid_at = (event.occurred_at or now).astimezone(dt.UTC)
    if event.provider_txn:
        payment.provider_txn = event.provider_txn[:64]
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


def pending_payments(session: Session, *, older_than: dt.datetime, limit: int = 500) -> list[Payment]:
    """Payments still open at their provider, oldest first (for `sync_payment`: lost notifications)."""
    # cancelled: the order expired here, the provider has not yet been told to close the payment
    rows = session.exec(select(Payment).where(Payment.status.in_(("pending", "failed", "cancelled")),  # type: ignore[attr-defined]
                                              Payment.created_at <= older_than)
                        .order_by(Payment.created_at).limit(limit)).all()
    return list(rows)


def sync_payment(session: Session, payment: Payment, *, providers: Providers, redis_client: redis.Redis,
                 ledger: Ledger, now: dt.datetime, valid_before_s: int, valid_after_s: int) -> str:
    """Asks the payment's provider for its state and applies what it says (a lost notification).

    An order that is no longer payable (expired, cancelled) has its payment closed at the provider,
    so the passenger cannot pay it any more; a payment made before the close is refunded by
    `apply_payment_event` (late payment).
    """
    provider = providers.for_payment(payment)
    order = session.get(Order, payment.order_id)
    assert order is not None
    event = provider.query_payment(payment.provider_ref)
    if event is None and order.status in (OrderStatus.expired, OrderStatus.cancelled):
        provider.close_payment(payment.provider_ref)
        event = provider.query_payment(payment.provider_ref)
    if event is None:
        if order.status in (OrderStatus.expired, OrderStatus.cancelled):
            # closed at the provider, which reports nothing else (the sandbox keeps no state)
            payment.status = "closed"
            payment.updated_at = now
            session.add(payment)
            return "closed"
        return "open"
    return apply_payment_event(session, event, provider=provider, redis_client=redis_client, ledger=ledger,
                               now=now, valid_before_s=valid_before_s, valid_after_s=valid_after_s)


def query_payments(session: Session, providers: Providers, *, redis_client: redis.Redis, ledger: Ledger,
                   now: dt.datetime, valid_before_s: int, valid_after_s: int, older_than_s: int = 60,
                   batch: int = 200) -> dict[str, int]:
    """`sync_payment` for every payment still open for ``older_than_s``; counts by outcome.

    One payment's provider error is counted (``provider_error``) and the others go on; each payment is
    applied in a savepoint, so a failure leaves nothing half-applied.
    """
    counts: dict[str, int] = {}
    for payment in pending_payments(session, older_than=now - dt.timedelta(seconds=older_than_s), limit=batch):
        if providers.find(payment.provider) is None:
            outcome = "provider_not_configured"
        else:
            try:
                with session.begin_nested():
                    outcome = sync_payment(session, payment, providers=providers, redis_client=redis_client,
                                           ledger=ledger, now=now, valid_before_s=valid_before_s,
                                           valid_after_s=valid_after_s)
            except PaymentProviderError:
                outcome = "provider_error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
