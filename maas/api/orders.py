"""POST /v1/orders, GET /v1/orders/{id}, POST /v1/orders/{id}/cancel, POST /v1/orders/{id}/refunds."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, Response, status
from pydantic import Field

from maas import audit
from maas.api.deps import CurrentPassenger, RedisDep, SessionDep, SettingsDep
from maas.api.offers import Strict
from maas.api.payments import sync_order_payment_now
from maas.errors import error_responses
from maas.journeys import now, runtime
from ticketing import orders, payments, refunds, tickets
from ticketing.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    LegNotRefundable,
    OfferAlreadyOrdered,
    OfferExpired,
    OfferNotFound,
    OrderNotFound,
    PayerRequired,
    PaymentMethodUnavailable,
    PaymentProviderError,
    ProviderNotAvailable,
    SoldOut,
    TravelersMismatch,
    UnsupportedIdType,
)
from ticketing.fares.errors import NotEligible, UnknownRiderCategory
from ticketing.identity import InvalidIdNumber
from ticketing.models import Order, OrderStatus

router = APIRouter(tags=["ticketing"])


class TravelerIn(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["张三"])
    id_type: str = Field(min_length=1, max_length=32, examples=["cn_resident_id"])
    id_number: str = Field(min_length=1, max_length=40)
    rider_category: str = Field(default="adult", min_length=1, max_length=32)
    birth_date: dt.date | None = Field(default=None, description="for age-based concessions on non-resident IDs")
    disability_certificate: bool = Field(default=False, description="holds a 残疾人证 (checked at the gate)")


class OrderIn(Strict):
    offer_id: str = Field(min_length=1, max_length=40)
    travelers: list[TravelerIn] = Field(min_length=1, max_length=9)
    payment_method: Literal["wechat", "alipay", "stripe", "sandbox"] | None = Field(
        default=None, description="the rail to pay with; default: the deployment's (GET /v1/payments/methods)")
    payer_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_\-]+$",
        description="the payer at the provider: the WeChat mini-program user's openid (JSAPI), or the Alipay "
                    "buyer_id (mini-program); without it Alipay pays by H5")


class RefundIn(Strict):
    leg_ids: list[str] = Field(min_length=1, max_length=100)


def order_summary(session: Any, order: Order, *, payment: Any = None) -> dict[str, Any]:
    """The order as its owner sees it (``payment``: the order's payment when the caller has it already)."""
    if payment is None:
        payment = payments.get_payment(session, order.order_id)
    return {"order_id": order.order_id, "status": order.status,
            "total": {"amount": order.total_amount, "currency": order.currency},
            "expires_at": order.expires_at.isoformat() if order.status == OrderStatus.pending_payment else None,
            "payment": payments.payment_view(payment) if payment else None}


@router.post("/v1/orders", status_code=status.HTTP_201_CREATED,
             responses=error_responses(OfferNotFound, OfferExpired, OfferAlreadyOrdered, IdempotencyKeyReused,
                                       TravelersMismatch, UnsupportedIdType, InvalidIdNumber, NotEligible,
                                       UnknownRiderCategory, PaymentProviderError, ProviderNotAvailable, SoldOut,
                                       PaymentMethodUnavailable, PayerRequired))
def create_order(body: OrderIn, request: Request, response: Response, session: SessionDep,
                 settings: SettingsDep, redis: RedisDep, principal: CurrentPassenger,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
                 ) -> dict[str, Any]:
    """`{order_id, status, total, payment}`; a retry with the same `Idempotency-Key` returns the same order (200)."""
    rt = runtime(request.app)
    provider = rt.providers.get(body.payment_method)  # 422 payment_method_unavailable before anything is held
    if provider.name == "wechat" and not body.payer_id:
        raise PayerRequired("WeChat Pay in a mini-program needs the payer's openid in payer_id",
                            details={"payment_method": "wechat"})
    # keyed hash of the body: recognises a retry without keeping a guessable digest of ID numbers
    body_hash = rt.keyring.blind_index(json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False),
                                       "order_request")
    travelers = [orders.TravelerIn(name=t.name, id_type=t.id_type, id_number=t.id_number,
                                   rider_category=t.rider_category, birth_date=t.birth_date,
                                   has_disability_document=t.disability_certificate) for t in body.travelers]
    order, created = orders.create_order(
        session, rt.keyring, user_id=principal.subject, offer_id=body.offer_id, travelers=travelers,
        idempotency_key=idempotency_key, body_hash=body_hash, provider=provider.name, now=now(request.app),
        payment_ttl_s=settings.order_payment_ttl_s)
    payment = None
    if created:
        payments.extend_holds(session, redis, order, now=now(request.app))
        payment = payments.start_payment(session, provider, order, payer=body.payer_id,
                                         description=_description(order))
    else:
        response.status_code = status.HTTP_200_OK
    return order_summary(session, order, payment=payment)


def _description(order: Order) -> str:
    """What the passenger sees on the provider's receipt (no personal data)."""
    return f"MaaS journey {order.order_id}"


@router.get("/v1/orders/{order_id}", responses=error_responses(OrderNotFound))
def get_order(order_id: str, session: SessionDep, principal: CurrentPassenger) -> dict[str, Any]:
    """`{order_id, status, total, tickets, payments, refunds}` (owner only)."""
    order = orders.get_order(session, order_id, user_id=principal.subject)
    payment = payments.get_payment(session, order_id)
    out = order_summary(session, order)
    out.update({
        "tickets": [tickets.ticket_view(session, t) for t in tickets.list_tickets(session, order_id=order_id)],
        "payments": [payments.payment_view(payment)] if payment else [],
        "refunds": [refunds.refund_view(r) for r in refunds.list_refunds(session, order_id)],
    })
    return out


@router.post("/v1/orders/{order_id}/cancel", responses=error_responses(OrderNotFound, IllegalTransition))
def cancel_order(order_id: str, request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep,
                 principal: CurrentPassenger) -> dict[str, Any]:
    """Cancels an unpaid order and frees its seats; any other state is a 409 `illegal_transition`."""
    order = orders.get_order(session, order_id, user_id=principal.subject, for_update=True)
    orders.transition(order, OrderStatus.cancelled, now=now(request.app))
    session.add(order)
    payments.release_holds(session, redis, order)
    sync_order_payment_now(request, session, redis, settings, order.order_id)  # closes the payment at its provider
    return order_summary(session, order)


@router.post("/v1/orders/{order_id}/payment/sync", responses=error_responses(OrderNotFound))
def sync_order_payment(order_id: str, request: Request, session: SessionDep, redis: RedisDep,
                       settings: SettingsDep, principal: CurrentPassenger) -> dict[str, Any]:
    """Asks the payment's provider for its state now (the app calls it when the mini-program says it
    paid but no notification has arrived): `{order_id, status, outcome, payment}`."""
    orders.get_order(session, order_id, user_id=principal.subject)
    outcome = sync_order_payment_now(request, session, redis, settings, order_id)
    order = orders.get_order(session, order_id, user_id=principal.subject)
    session.refresh(order)
    return {**order_summary(session, order), "outcome": outcome}


@router.post("/v1/orders/{order_id}/refunds", status_code=status.HTTP_201_CREATED,
             responses=error_responses(OrderNotFound, IllegalTransition, LegNotRefundable, PaymentProviderError))
def refund_legs(order_id: str, body: RefundIn, request: Request, session: SessionDep, redis: RedisDep,
                principal: CurrentPassenger) -> dict[str, Any]:
    """Refunds unused legs by the operators' rules: `{refund_id, amount, fee, status, leg_ids}`.

    Two-phase (docs/refunds.md): the refund intent is committed before the provider is called, and a
    retry of the same legs returns the same refund (finishing it if it was left `pending`)."""
    rt = runtime(request.app)

    def on_intent(refund: Any) -> None:
        audit.record(session, action="ticket.refund", actor_id=principal.subject, actor_role=principal.role,
                     target=refund.refund_id, details={"order_id": order_id, "legs": len(refund.leg_ids),
                                                       "amount": refund.amount, "fee": refund.fee})

    refund = refunds.request_refund(session, order_id=order_id, user_id=principal.subject, leg_ids=body.leg_ids,
                                    rules=rt.refund_rules, providers=rt.providers, redis_client=redis,
                                    ledger=rt.ledger, now=now(request.app), commit=session.commit,
                                    on_intent=on_intent)
    return refunds.refund_view(refund)
