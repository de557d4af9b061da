"""Payment notifications and confirmations, one code path for every rail.

- ``POST /v1/payments/stripe/webhook`` (``Stripe-Signature``),
- ``POST /v1/payments/wechat/notify`` (WeChat Pay v3: RSA-signed headers, AES-256-GCM resource),
- ``POST /v1/payments/alipay/notify`` (form-encoded, RSA2 ``sign``),
- ``POST /v1/payments/sandbox/{order_id}/confirm`` (embedded default only),
- ``GET /v1/payments/methods`` (what an order may name as ``payment_method``).

Each verifies with its rail (`PaymentProvider.parse_webhook`) and ends in
`ticketing.payments.apply_payment_event`: the sandbox confirmation is the same
code path as a verified notification. Answers are what each rail expects
(WeChat: ``{"code": "SUCCESS"}``; Alipay: the text ``success``); a notification
that does not verify is a 400 (the rail sends it again later).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from maas import audit
from maas.api.deps import CurrentAdmin, CurrentPassenger, RedisDep, SessionDep, SettingsDep
from maas.errors import error_responses
from maas.journeys import now, runtime
from ticketing import bills, orders, payments
from ticketing.errors import (
    InvalidBill,
    InvalidWebhook,
    NotFound,
    OrderNotFound,
    PaymentProviderError,
    ProviderNotAvailable,
    SandboxDisabled,
)

router = APIRouter(tags=["payments"])


def _record(session: Any, event: payments.PaymentEvent, outcome: str) -> None:
    audit.record(session, action="payment.event", actor_id=None, actor_role=event.provider,
                 target=event.event_id[:200], details={"kind": event.kind, "outcome": outcome})


def _apply(request: Request, session: Any, redis: Any, settings: Any, event: payments.PaymentEvent,
           provider: payments.PaymentProvider) -> str:
    rt = runtime(request.app)
    outcome = payments.apply_payment_event(session, event, provider=provider, redis_client=redis,
                                           ledger=rt.ledger, now=now(request.app),
                                           valid_before_s=settings.ticket_valid_before_s,
                                           valid_after_s=settings.ticket_valid_after_s)
    _record(session, event, outcome)
    return outcome


def sync_order_payment_now(request: Request, session: Any, redis: Any, settings: Any, order_id: str) -> str:
    """`ticketing.payments.sync_payment` for the order's payment (a lost notification, or closing the
    payment of a cancelled order); a provider that cannot be reached now leaves it to the
    ``ticketing.query_payments`` job."""
    payment = payments.get_payment(session, order_id)
    if payment is None or payment.status not in ("pending", "failed", "cancelled"):
        return payment.status if payment else "no_payment"
    rt = runtime(request.app)
    try:
        with session.begin_nested():
            outcome = payments.sync_payment(session, payment, providers=rt.providers, redis_client=redis,
                                            ledger=rt.ledger, now=now(request.app),
                                            valid_before_s=settings.ticket_valid_before_s,
                                            valid_after_s=settings.ticket_valid_after_s)
    except (PaymentProviderError, ProviderNotAvailable):
        return "provider_unreachable"
    audit.record(session, action="payment.sync", actor_id=None, actor_role=payment.provider, target=order_id,
                 details={"outcome": outcome})
    return outcome


async def _notification(request: Request, session: Any, redis: Any, settings: Any, name: str) -> str:
    provider = runtime(request.app).providers.find(name)
    if provider is None:
        raise NotFound(f"{name} is not configured on this deployment", code=f"{name}_disabled")
    payload = await request.body()
    event = provider.parse_webhook(payload, request.headers)
    if event is None:
        return "ignored"
    return await anyio.to_thread.run_sync(_apply, request, session, redis, settings, event, provider)


@router.get("/v1/payments/methods")
def payment_methods(request: Request) -> dict[str, Any]:
    """`{methods: [...], default}`: the rails an order may name as `payment_method` here."""
    providers = runtime(request.app).providers
    return {"methods": list(providers.names), "default": providers.default}


@router.post("/v1/payments/stripe/webhook", responses=error_responses(InvalidWebhook, ProviderNotAvailable, NotFound))
async def stripe_webhook(request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep,
                         ) -> dict[str, Any]:
    """Verifies the `Stripe-Signature`, then marks the order paid and issues its tickets exactly once."""
    outcome = await _notification(request, session, redis, settings, "stripe")
    return {"received": True, "outcome": outcome}


@router.post("/v1/payments/wechat/notify", responses=error_responses(InvalidWebhook, ProviderNotAvailable, NotFound))
async def wechat_notify(request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep) -> Response:
    """WeChat Pay v3 payment and refund notifications (signature verified, resource decrypted):
    answers `{"code": "SUCCESS", "message": "成功"}` once applied (or already applied)."""
    outcome = await _notification(request, session, redis, settings, "wechat")
    return JSONResponse({"code": "SUCCESS", "message": "成功"}, headers={"X-Maas-Outcome": outcome})


@router.post("/v1/payments/alipay/notify", responses=error_responses(InvalidWebhook, ProviderNotAvailable, NotFound))
async def alipay_notify(request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep) -> Response:
    """Alipay asynchronous notifications (form-encoded, RSA2 `sign` verified): answers the text `success`."""
    outcome = await _notification(request, session, redis, settings, "alipay")
    return PlainTextResponse("success", headers={"X-Maas-Outcome": outcome})


@router.get("/v1/payments/bills/{provider}/{day}", responses=error_responses(NotFound, PaymentProviderError,
                                                                              InvalidBill))
def bill_reconciliation(provider: str, day: dt.date, request: Request, session: SessionDep,
                        admin: CurrentAdmin) -> dict[str, Any]:
    """Downloads the provider's bill of `day` (China Standard Time) and matches it with our payments and
    refunds: `{provider, date, lines, matched, ok, bill_total, our_total, mismatches: [{code, message, line,
    payment_ref, refund_id, ours, theirs}]}` (admin)."""
    rail = runtime(request.app).providers.find(provider)
    if rail is None or not hasattr(rail, "parse_bill"):
        raise NotFound(f"{provider!r} is not a configured payment rail with daily bills",
                       code="bill_source_not_found", details={"provider": provider})
    try:
        report = bills.reconcile_bill(session, source=rail, day=day)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidBill(f"the provider's bill is malformed: {exc}", details={"provider": provider}) from exc
    audit.record(session, action="payment.bill_reconciliation", actor_id=admin.subject, actor_role=admin.role,
                 target=f"{provider}:{day.isoformat()}", details={"lines": report.lines,
                                                                  "mismatches": len(report.mismatches)})
    return report.to_dict()


@router.post("/v1/payments/sandbox/{order_id}/confirm", responses=error_responses(SandboxDisabled, OrderNotFound))
def sandbox_confirm(order_id: str, request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep,
                    principal: CurrentPassenger) -> dict[str, Any]:
    """Embedded default only: completes a sandbox order's payment without a network."""
    provider = runtime(request.app).providers.find("sandbox")
    if provider is None:
        raise SandboxDisabled("the sandbox payment provider is not in use here")
    order = orders.get_order(session, order_id, user_id=principal.subject)
    payment = payments.get_payment(session, order_id)
    if payment is None:
        raise OrderNotFound("the order has no payment", details={"order_id": order_id})
    if payment.provider != "sandbox":
        raise SandboxDisabled(f"the order is paid with {payment.provider}, not the sandbox",
                              details={"order_id": order_id, "payment_method": payment.provider})
    event = payments.SandboxProvider.confirmation(order_id, payment.provider_ref, payment.amount, payment.currency)
    outcome = _apply(request, session, redis, settings, event, provider)
    session.refresh(order)
    return {"order_id": order_id, "status": order.status, "outcome": outcome}
