"""What ticketing tells the books: sales, refunds, uses and expiries of ticket legs.

Ticketing does not import the clearing package; the shell passes an object
with these four methods (``maas.journeys.ClearingLedger``) and ticketing
calls it inside the same session, so a ticket and its ledger entries commit
or roll back together. Amounts are integer minor units.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session


@dataclass(frozen=True)
class SoldLeg:
    leg_id: str
    operator_id: str
    service_date: dt.date
    distance_m: int | None
    standalone_fare: int | None
    #: what the leg is worth (its price on the ticket): the clearing share, the refund basis
    value: int | None = None


@dataclass(frozen=True)
class Sale:
    ticket_id: str
    order_id: str
    currency: str
    paid_amount: int
    sold_at: dt.datetime
    legs: tuple[SoldLeg, ...]
    #: which rule valued the legs (an apportionment agreement id, or ``as_priced``)
    agreement_id: str | None = None


@dataclass(frozen=True)
class RefundEvent:
    refund_id: str
    ticket_id: str
    leg_ids: tuple[str, ...]
    amount: int
    currency: str
    refunded_at: dt.datetime
    #: what each leg of ``leg_ids`` gives back (sums to ``amount``); None: split in proportion to the legs' values
    leg_amounts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Use:
    leg_id: str
    ticket_id: str
    operator_id: str
    used_at: dt.datetime
    gate_id: str | None


class Ledger(Protocol):
    def sale(self, session: Session, sale: Sale) -> None: ...

    def refund(self, session: Session, refund: RefundEvent) -> None: ...

    def use(self, session: Session, use: Use) -> None: ...

    def expiry(self, session: Session, *, leg_id: str, expired_at: dt.datetime) -> None: ...
