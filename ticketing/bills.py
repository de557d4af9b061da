"""Reconciliation of a provider's daily bill (WeChat ``tradebill``, Alipay ``bill``) against our payments.

The provider's bill is the record of money that actually moved; ours is what we
ticketed and refunded. `reconcile_bill` matches them both ways for one
provider day:

- every bill row must be a payment or refund we recorded with the same amount
  (``unknown_payment`` / ``unknown_refund`` / ``amount_mismatch`` /
  ``currency_mismatch``, with the bill's line number);
- every payment we recorded as taken on that day (``paid_at``), and every
  refund we recorded as paid back, must be on the bill (``missing_payment`` /
  ``missing_refund``, with our ids).

Days are the provider's calendar days (China Standard Time for WeChat Pay and
Alipay). A payment taken a minute before midnight may land on the next bill:
rows whose reference we know but whose time falls on a neighbouring day
match, and are counted (``matched_other_day``) rather than reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from ticketing.models import Payment, Refund
from ticketing.payments import BillLine, BillSource

#: The calendar of the Chinese providers' bills.
BILL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: ``line`` is the bill's line number (None when the row is missing from the bill)."""

    code: str
    message: str
    line: int | None = None
    payment_ref: str | None = None
    refund_id: str | None = None
    ours: int | None = None
    theirs: int | None = None


@dataclass
class BillReport:
    provider: str
    day: dt.date
    lines: int = 0
    matched: int = 0
    matched_other_day: int = 0
    bill_total: dict[str, int] = field(default_factory=dict)  # net per currency: payments - refunds
    our_total: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "date": self.day.isoformat(), "lines": self.lines,
                "matched": self.matched, "matched_other_day": self.matched_other_day, "ok": self.ok,
                "bill_total": [{"amount": v, "currency": c} for c, v in sorted(self.bill_total.items())],
                "our_total": [{"amount": v, "currency": c} for c, v in sorted(self.our_total.items())],
                "mismatches": [{k: v for k, v in asdict(m).items() if v is not None} for m in self.mismatches]}


def day_window(day: dt.date, tz: ZoneInfo = BILL_TZ) -> tuple[dt.datetime, dt.datetime]:
    """The provider day ``day`` as a UTC half-open interval."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def reconcile_bill(session: Session, *, source: BillSource, day: dt.date, raw: bytes | None = None) -> BillReport:
    """Downloads (unless ``raw`` is given) and parses ``source``'s bill of ``day``, and matches it with ours."""
    lines = source.parse_bill(source.download_bill(day) if raw is None else raw)
    return reconcile_lines(session, provider=source.name, day=day, lines=lines)


def reconcile_lines(session: Session, *, provider: str, day: dt.date, lines: Iterable[BillLine]) -> BillReport:
    """Matches parsed bill rows with our payments and refunds of ``provider`` (see the module's rules)."""
    rows = list(lines)
    report = BillReport(provider=provider, day=day, lines=len(rows))
    start, end = day_window(day)
    slack = dt.timedelta(hours=1)  # a row a little past midnight may belong to either day's bill

    refs = {r.payment_ref for r in rows}
    pays = {p.provider_ref: p for p in session.exec(select(Payment).where(
        Payment.provider == provider, Payment.provider_ref.in_(refs))).all()} if refs else {}  # type: ignore[attr-defined]
    refund_ids = {r.refund_id for r in rows if r.kind == "refund" and r.refund_id}
    refunds = {r.refund_id: r for r in session.exec(select(Refund).where(
        Refund.refund_id.in_(refund_ids))).all()} if refund_ids else {}  # type: ignore[attr-defined]

    seen_payments: set[str] = set()
    seen_refunds: set[str] = set()
    for row in rows:
        sign = 1 if row.kind == "payment" else -1
        report.bill_total[row.currency] = report.bill_total.get(row.currency, 0) + sign * row.amount
        payment = pays.get(row.payment_ref)
        if row.kind == "payment":
            if payment is None:
                report.mismatches.append(Mismatch(
                    "unknown_payment", f"line {row.line}: payment {row.payment_ref} is on the bill but not ours",
                    line=row.line, payment_ref=row.payment_ref, theirs=row.amount))
                continue
            seen_payments.add(payment.provider_ref)
            problem = _compare(row, ours=payment.amount, currency=payment.currency,
                               taken=payment.status in ("succeeded", "refunded"))
        else:
            refund = refunds.get(row.refund_id or "")
            if refund is None or payment is None or refund.order_id != payment.order_id:
                report.mismatches.append(Mismatch(
                    "unknown_refund", f"line {row.line}: refund {row.refund_id or '?'} of {row.payment_ref} is on "
                    "the bill but not ours", line=row.line, payment_ref=row.payment_ref, refund_id=row.refund_id,
                    theirs=row.amount))
                continue
            seen_refunds.add(refund.refund_id)
            problem = _compare(row, ours=refund.amount, currency=refund.currency, taken=refund.status == "succeeded")
        if problem is not None:
            report.mismatches.append(problem)
            continue
        report.matched += 1
        at = _utc(row.at)
        if at is not None and not (start - slack <= at < end + slack):
            report.matched_other_day += 1

    # ours on that day, missing from the bill
    for p in session.exec(select(Payment).where(Payment.provider == provider, Payment.paid_at >= start,
                                                Payment.paid_at < end)).all():
        report.our_total[p.currency] = report.our_total.get(p.currency, 0) + p.amount
        if p.provider_ref not in seen_payments:
            report.mismatches.append(Mismatch(
                "missing_payment", f"payment {p.payment_id} ({p.provider_ref}) was taken on {day} by our records "
                "but is not on the bill", payment_ref=p.provider_ref, ours=p.amount))
    ours_refunded = session.exec(
        select(Refund, Payment).join(Payment, Payment.order_id == Refund.order_id)
        .where(Payment.provider == provider, Refund.status == "succeeded", Refund.amount > 0,
               Refund.updated_at >= start, Refund.updated_at < end)).all()  # type: ignore[operator]
    for r, p in ours_refunded:
        report.our_total[r.currency] = report.our_total.get(r.currency, 0) - r.amount
        if r.refund_id not in seen_refunds:
            report.mismatches.append(Mismatch(
                "missing_refund", f"refund {r.refund_id} of {p.provider_ref} was paid back on {day} by our records "
                "but is not on the bill", payment_ref=p.provider_ref, refund_id=r.refund_id, ours=r.amount))
    report.mismatches.sort(key=lambda m: (m.line is None, m.line or 0, m.code))
    return report


def _compare(row: BillLine, *, ours: int, currency: str, taken: bool) -> Mismatch | None:
    what = "payment" if row.kind == "payment" else f"refund {row.refund_id}"
    if row.currency != currency:
        return Mismatch("currency_mismatch", f"line {row.line}: {what} of {row.payment_ref} is in {row.currency} on "
                        f"the bill, {currency} in our records", line=row.line, payment_ref=row.payment_ref,
                        refund_id=row.refund_id)
    if row.amount != ours:
        return Mismatch("amount_mismatch", f"line {row.line}: {what} of {row.payment_ref} is {row.amount} on the "
                        f"bill, {ours} in our records", line=row.line, payment_ref=row.payment_ref,
                        refund_id=row.refund_id, ours=ours, theirs=row.amount)
    if not taken:
        return Mismatch("status_mismatch", f"line {row.line}: {what} of {row.payment_ref} is on the bill but not "
                        "recorded as completed by us", line=row.line, payment_ref=row.payment_ref,
                        refund_id=row.refund_id, ours=ours, theirs=row.amount)
    return None
