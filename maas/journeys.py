"""Composition of ticketing and clearing: one journey purchase, its ledger, its jobs.

Ticketing never imports clearing; this module hands ticketing a `ClearingLedger`
that calls ``clearing.interface`` with the caller's session, so a ticket sale,
a gate admission, a refund or an expiry and its ledger entries commit or roll
back in one transaction.

`TicketingRuntime` holds the per-process pieces built from settings: the
personal-data keyring, the QR issuer keys, the payment provider and the
refund rules. The API reaches it through `runtime(app)`. Fares and seat
capacities belong to the serving timetable snapshot (`maas.planner`).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlmodel import Session

from clearing import interface as clearing
from clearing import tasks as clearing_tasks
from clearing.clock import local_date as clearing_local_date
from maas.db import utcnow
from maas.jobs import job
from maas.redis_client import get_redis
from maas.settings import Settings
from ticketing import ledger as tl
from ticketing.crypto import Keyring
from ticketing.payments import PaymentProvider, Providers, StripeProvider, make_providers, query_payments
from ticketing.qr import IssuerKeys
from ticketing.refunds import RefundRules
from ticketing.tasks import expire_legs, expire_orders

class ClearingLedger:
    """`ticketing.ledger.Ledger` backed by the clearing package."""

    def sale(self, session: Session, sale: tl.Sale) -> None:
        clearing.record_sale(session, clearing.SaleRecord(
            ticket_id=sale.ticket_id, order_id=sale.order_id, currency=sale.currency, paid_amount=sale.paid_amount,
            sold_at=sale.sold_at, agreement_id=sale.agreement_id,
            legs=tuple(clearing.SaleLeg(leg_id=x.leg_id, operator_id=x.operator_id, service_date=x.service_date,
                                        distance_m=x.distance_m, standalone_fare=x.standalone_fare, value=x.value)
                       for x in sale.legs)))

    def refund(self, session: Session, refund: tl.RefundEvent) -> None:
        clearing.record_refund(session, clearing.RefundRecord(
            refund_id=refund.refund_id, ticket_id=refund.ticket_id, leg_ids=refund.leg_ids, amount=refund.amount,
            currency=refund.currency, refunded_at=refund.refunded_at, leg_amounts=refund.leg_amounts))

    def use(self, session: Session, use: tl.Use) -> None:
        # the use row only; its recognition is posted by the job clearing.recognise_uses (or a settlement run)
        clearing.queue_use(session, clearing.UseRecord(leg_id=use.leg_id, ticket_id=use.ticket_id,
                                                        operator_id=use.operator_id, used_at=use.used_at,
                                                        gate_id=use.gate_id))

    def expiry(self, session: Session, *, leg_id: str, expired_at: dt.datetime) -> None:
        clearing.record_expiry(session, leg_id=leg_id, expired_at=expired_at)


class TicketingRuntime:
    """Per-process ticketing state (thread-safe lazy builds)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring = Keyring.from_settings(settings.secret("pii_keys"), settings.secret("blind_index_key"))
        self.issuer = IssuerKeys(settings.secret("issuer_keys"))
        self.refund_rules = RefundRules.load(settings.refund_rules_file)
        self.ledger = ClearingLedger()
        self._providers: Providers | None = None
        self._lock = threading.Lock()

    @property
    def providers(self) -> Providers:
        """The configured payment rails (built once; an order names one by ``payment_method``)."""
        if self._providers is None:
            with self._lock:
                if self._providers is None:
                    s = self.settings
                    self._providers = make_providers(environment=s.environment, configured=configured_rails(s),
                                                     default=s.default_payment_method,
                                                     sandbox=s.sandbox_payments)
        return self._providers

    @property
    def provider(self) -> PaymentProvider:
        """The default rail (orders that name no ``payment_method``)."""
        return self.providers.get()


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def configured_rails(s: Settings) -> dict[str, PaymentProvider]:
    """The rails whose settings are present (each SDK is imported only when its rail is configured)."""
    rails: dict[str, PaymentProvider] = {}
    if s.stripe_api_key:
        rails["stripe"] = StripeProvider(api_key=_secret(s.stripe_api_key) or "",
                                         webhook_secret=_secret(s.stripe_webhook_secret), api_base=s.stripe_api_base)
    if s.wechat_pay_mchid:
        from ticketing.pay_wechat import WeChatPayProvider

        rails["wechat"] = WeChatPayProvider(
            mchid=s.wechat_pay_mchid, appid=s.wechat_pay_appid or "", private_key=_secret(s.wechat_pay_private_key) or "",
            cert_serial_no=s.wechat_pay_cert_serial_no or "", apiv3_key=_secret(s.wechat_pay_apiv3_key) or "",
            notify_url=s.wechat_pay_notify_url or "", platform_public_key=s.wechat_pay_public_key,
            platform_public_key_id=s.wechat_pay_public_key_id,
            cert_dir=str(s.wechat_pay_cert_dir) if s.wechat_pay_cert_dir else None, api_base=s.wechat_pay_api_base)
    if s.alipay_app_id:
        from ticketing.pay_alipay import AlipayProvider

        rails["alipay"] = AlipayProvider(
            app_id=s.alipay_app_id, app_private_key=_secret(s.alipay_app_private_key) or "",
            alipay_public_key=s.alipay_public_key or "", notify_url=s.alipay_notify_url or "",
            gateway=s.alipay_gateway, seller_id=s.alipay_seller_id or None)
    return rails


def leg_values(session: Session, at: dt.datetime) -> Any:
    """The `ticketing.offers.create_offer` hook that values an offer's legs by clearing's rule (docs/refunds.md)."""

    def value(paid: int, legs: list[dict[str, Any]]) -> tuple[str, list[int]]:
        return clearing.leg_values(session, paid=paid, on=clearing_local_date(at), legs=[
            clearing.PricedLeg(operator_id=x["operator_id"], distance_m=x.get("distance_m"),
                               standalone_fare=x.get("standalone"), price=x.get("price")) for x in legs])

    return value


def runtime(app: Any) -> TicketingRuntime:
    """The app's `TicketingRuntime` (created on first use)."""
    rt = getattr(app.state, "ticketing", None)
    if rt is None:
        rt = app.state.ticketing = TicketingRuntime(app.state.settings)
    return rt


def now(app: Any) -> dt.datetime:
    """The app's clock (tests on past feeds set ``app.state.clock``)."""
    clock = getattr(app.state, "clock", None)
    # stored times are UTC: SQLite keeps no offset, so a local time would come back shifted
    return clock().astimezone(dt.UTC) if clock is not None else utcnow()


@job("ticketing.query_payments", order=5)
def _query_payments(session: Session, settings: Settings, at: dt.datetime) -> str:
    # Before expiry: a payment whose notification was lost is found and ticketed while the order is payable;
    # payments of orders no longer payable are closed at their provider.
    rt = TicketingRuntime(settings)
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(query_payments(
        session, rt.providers, redis_client=get_redis(settings), ledger=ClearingLedger(), now=at,
        valid_before_s=settings.ticket_valid_before_s, valid_after_s=settings.ticket_valid_after_s).items())
    ) or "no open payments"


@job("ticketing.expire_orders", order=10)
def _expire_orders(session: Session, settings: Settings, at: dt.datetime) -> str:
    n = expire_orders(session, redis_client=get_redis(settings), now=at)
    return f"{n} unpaid orders expired"


@job("ticketing.reconcile_refunds", order=15)
def _reconcile_refunds(session: Session, settings: Settings, at: dt.datetime) -> str:
    # Before expiry: a refund intent left pending by a crash is finished (or given back) first.
    from ticketing.refunds import reconcile_refunds

    counts = reconcile_refunds(session, providers=TicketingRuntime(settings).providers, redis_client=get_redis(settings),
                               ledger=ClearingLedger(), now=at)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no pending refunds"


@job("ticketing.expire_legs", order=20)
def _expire_legs(session: Session, settings: Settings, at: dt.datetime) -> str:
    n = expire_legs(session, ledger=ClearingLedger(), now=at)
    return f"{n} ticket legs expired"


@job("clearing.recognise_uses", order=80)
def _recognise_uses(session: Session, settings: Settings, at: dt.datetime) -> str:
    # Gates record uses only (one statement at the gate); the money moves here, in committed batches.
    return clearing_tasks.recognise_uses(session)


@job("clearing.settle_daily", order=90)
def _settle_daily(session: Session, settings: Settings, at: dt.datetime) -> str:
    # After the expiry jobs (order), so yesterday's expired legs are recognised in this run.
    return clearing_tasks.settle_previous_day(session, now=at)
