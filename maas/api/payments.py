"""POST /v1/payments/stripe/webhook (Stripe-signed) and POST /v1/payments/sandbox/{order_id}/confirm.

Both end in `ticketing.payments.apply_payment_event`: the sandbox confirmation
is the same code path as a verified webhook.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request

from maas import audit
from maas.api.deps import CurrentPassenger, RedisDep, SessionDep, SettingsDep
from maas.errors import error_responses
from maas.journeys import now, runtime
from ticketing import orders, payments
from ticketing.errors import InvalidWebhook, NotFound, OrderNotFound, ProviderNotAvailable, SandboxDisabled

router = APIRouter(tags=["payments"])


def _apply(request: Request, session: Any, redis: Any, settings: Any, event: payments.PaymentEvent) -> str:
    rt = runtime(request.app)
    outcome = payments.apply_payment_event(session, event, provider=rt.provider, redis_client=redis,
                                           ledger=rt.ledger, now=now(request.app),
                                           valid_before_s=settings.ticket_valid_before_s,
                                           valid_after_s=settings.ticket_valid_after_s)
    audit.record(session, action="payment.event", actor_id=None, actor_role=event.provider,
                 target=event.event_id[:200], details={"kind": event.kind, "outcome": outcome})
    return outcome


@router.post("/v1/payments/stripe/webhook", responses=error_responses(InvalidWebhook, ProviderNotAvailable, NotFound))
async def stripe_webhook(request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep,
                         stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
                         ) -> dict[str, Any]:
    """Verifies the signature, then marks the order paid and issues its tickets exactly once."""
    provider = runtime(request.app).provider
    if not isinstance(provider, payments.StripeProvider):
        raise NotFound("Stripe is not configured on this deployment", code="stripe_disabled")
    payload = await request.body()
    event = provider.parse_webhook(payload, stripe_signature)
    if event is None:
        return {"received": True, "outcome": "ignored"}
    outcome = await anyio.to_thread.run_sync(_apply, request, session, redis, settings, event)
    return {"received": True, "outcome": outcome}


@router.post("/v1/payments/sandbox/{order_id}/confirm", responses=error_responses(SandboxDisabled, OrderNotFound))
def sandbox_confirm(order_id: str, request: Request, session: SessionDep, redis: RedisDep, settings: SettingsDep,
                    principal: CurrentPassenger) -> dict[str, Any]:
    """Embedded default only: completes the order's payment without a network."""
    provider = runtime(request.app).provider
    if not isinstance(provider, payments.SandboxProvider):
        raise SandboxDisabled("the sandbox payment provider is not in use here")
    order = orders.get_order(session, order_id, user_id=principal.subject)
    payment = payments.get_payment(session, order_id)
    if payment is None:
        raise OrderNotFound("the order has no payment", details={"order_id": order_id})
    event = payments.SandboxProvider.confirmation(order_id, payment.provider_ref, payment.amount, payment.currency)
    outcome = _apply(request, session, redis, settings, event)
    session.refresh(order)
    return {"order_id": order_id, "status": order.status, "outcome": outcome}
