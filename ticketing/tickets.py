"""Tickets: one per traveller for the whole journey, one entitlement (leg) per ride.

Issued exactly once per paid order (the order's ``paid -> ticketed``
transition happens under a row lock, and ``tickets.traveler_id`` is unique),
in the transaction that records the payment and the ledger's sale entries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing.errors import TicketNotFound
from ticketing.ledger import Ledger, Sale, SoldLeg
from ticketing.models import LegStatus, Offer, Order, OrderStatus, Ticket, TicketLeg, Traveler, new_id
from ticketing.orders import transition, traveler_view


def issue_tickets(session: Session, order: Order, *, ledger: Ledger, now: dt.datetime, valid_before_s: int,
                  valid_after_s: int) -> list[Ticket]:
    """Issues the order's tickets (order must be ``paid``) and moves it to ``ticketed``.

    The tickets and their legs are written by two Core statements (all travellers at once), then the
    ledger's sale of each ticket; the returned `Ticket` objects are not attached to the session.
    """
    offer = session.get(Offer, order.offer_id)
    assert offer is not None  # FK
    holds = {h["leg_index"]: h for h in offer.holds}
    travelers = session.execute(sa.select(Traveler.traveler_id, Traveler.position)
                                .where(Traveler.order_id == order.order_id).order_by(Traveler.position)).all()
    tickets: list[Ticket] = []
    ticket_rows: list[dict[str, Any]] = []
    leg_rows: list[dict[str, Any]] = []
    sales: list[Sale] = []
    for traveler in travelers:
        quote = offer.quotes[traveler.position]
        ticket_id = new_id("tkt")
        legs: list[dict[str, Any]] = []
        for k, leg in enumerate(offer.legs):
            # UTC in the database (SQLite stores no offset)
            dep = dt.datetime.fromisoformat(leg["departure"]).astimezone(dt.UTC)
            arr = dt.datetime.fromisoformat(leg["arrival"]).astimezone(dt.UTC)
            hold = holds.get(leg["leg_index"])
            legs.append(dict(
                leg_id=new_id("leg"), ticket_id=ticket_id, position=k, leg_index=leg["leg_index"],
                operator_id=leg["operator_id"], feed_id=leg["feed_id"], mode=leg["mode"], route_id=leg["route_id"],
                trip_id=leg["trip_id"], service_date=dt.date.fromisoformat(leg["service_date"]),
                from_stop_id=leg["from"]["stop_id"], from_station_id=leg["from"].get("parent_station"),
                to_stop_id=leg["to"]["stop_id"], departure=dep, arrival=arr,
                distance_m=leg.get("distance_m"),
                seat=str(hold["seats"][traveler.position]) if hold else None,
                valid_from=dep - dt.timedelta(seconds=valid_before_s),
                valid_until=arr + dt.timedelta(seconds=valid_after_s),
                status=LegStatus.unused.value, used_at=None, used_gate_id=None,
                price_amount=quote["legs"][k]["price"], standalone_amount=quote["legs"][k]["standalone"],
                currency=offer.currency))
        row = dict(ticket_id=ticket_id, order_id=order.order_id, traveler_id=traveler.traveler_id,
                   user_id=order.user_id, status="active", issued_at=now, device_key=None,
                   valid_from=min(x["valid_from"] for x in legs), valid_until=max(x["valid_until"] for x in legs))
        ticket_rows.append(row)
        leg_rows.extend(legs)
        tickets.append(Ticket(**row))
        sales.append(Sale(
            ticket_id=ticket_id, order_id=order.order_id, currency=offer.currency,
            paid_amount=sum(x["price_amount"] for x in legs), sold_at=now, agreement_id=quote.get("agreement_id"),
            # each leg's price on the ticket is its value: the clearing share and the refund basis (one rule)
            legs=tuple(SoldLeg(x["leg_id"], x["operator_id"], x["service_date"], x["distance_m"],
                               x["standalone_amount"], value=x["price_amount"]) for x in legs)))
    if ticket_rows:
        session.flush()
        conn = session.connection()
        conn.execute(sa.insert(Ticket.__table__), ticket_rows)  # type: ignore[attr-defined]
        conn.execute(sa.insert(TicketLeg.__table__), leg_rows)  # type: ignore[attr-defined]
    for sale in sales:
        ledger.sale(session, sale)
    transition(order, OrderStatus.ticketed, now=now)
    session.add(order)
    session.flush()
    return tickets


def ticket_status(legs: list[TicketLeg]) -> str:
    """``active`` while a leg is unused; then ``refunded`` if every leg was, else ``used`` or ``expired``."""
    states = {x.status for x in legs}
    if LegStatus.unused in states:
        return "active"
    if states == {LegStatus.refunded}:
        return "refunded"
    if LegStatus.used in states:
        return "used"
    return "expired"


def refresh_ticket_status(session: Session, ticket: Ticket) -> None:
    ticket.status = ticket_status(list_legs(session, ticket.ticket_id))
    session.add(ticket)


def list_legs(session: Session, ticket_id: str) -> list[TicketLeg]:
    return list(session.exec(select(TicketLeg).where(TicketLeg.ticket_id == ticket_id).order_by(TicketLeg.position)))


def get_ticket(session: Session, ticket_id: str, *, user_id: str | None = None) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or (user_id is not None and ticket.user_id != user_id):
        raise TicketNotFound("no such ticket", details={"ticket_id": ticket_id})
    return ticket


def list_tickets(session: Session, *, user_id: str | None = None, order_id: str | None = None) -> list[Ticket]:
    from ticketing.models import Traveler

    stmt = select(Ticket).join(Traveler, Traveler.traveler_id == Ticket.traveler_id)
    if user_id is not None:
        stmt = stmt.where(Ticket.user_id == user_id)
    if order_id is not None:
        stmt = stmt.where(Ticket.order_id == order_id)
    return list(session.exec(stmt.order_by(Ticket.issued_at, Ticket.order_id, Traveler.position)))


def leg_view(x: TicketLeg) -> dict[str, Any]:
    return {"leg_id": x.leg_id, "operator_id": x.operator_id, "trip_id": x.trip_id,
            "service_date": x.service_date.isoformat(), "from_stop_id": x.from_stop_id,
            "to_stop_id": x.to_stop_id, "seat": x.seat, "valid_from": x.valid_from.isoformat(),
            "valid_until": x.valid_until.isoformat(), "status": x.status,
            "price": {"amount": x.price_amount, "currency": x.currency},
            "mode": x.mode, "departure": x.departure.isoformat(), "arrival": x.arrival.isoformat()}


def ticket_view(session: Session, ticket: Ticket) -> dict[str, Any]:
    """The contract's Ticket (API.md): masked traveller, legs with status and price."""
    from ticketing.models import Traveler

    traveler = session.get(Traveler, ticket.traveler_id)
    assert traveler is not None
    return {"ticket_id": ticket.ticket_id, "order_id": ticket.order_id, "status": ticket.status,
            "traveler": traveler_view(traveler), "legs": [leg_view(x) for x in list_legs(session, ticket.ticket_id)],
            "device_bound": ticket.device_key is not None}


def ensure_not_device_bound(ticket: Ticket) -> None:
    """Raises `DeviceBound` when the ticket is bound to a device (no rotating QR codes any more)."""
    from ticketing.errors import DeviceBound

    if ticket.device_key is not None:
        raise DeviceBound("this ticket is bound to a device: show the code the app makes on that device",
                          details={"ticket_id": ticket.ticket_id})


def register_device_key(session: Session, ticket: Ticket, *, public_key: str) -> bytes:
    """Binds the holder's device key (base64url of 32 raw Ed25519 bytes) to the ticket; returns the raw key.

    A ticket is bound once: the same key again is accepted (a retried
    request), another key is refused, since an issued credential cannot be
    taken back from an offline phone.
    """
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ticketing.errors import Conflict, InvalidDeviceKey

    from ticketing.qr import is_strong_device_key

    text = public_key.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise InvalidDeviceKey("public_key must be a base64url Ed25519 public key (32 bytes)") from None
    if not is_strong_device_key(raw):
        # the identity and other small-order points verify forged signatures (R = identity, S = 0)
        raise InvalidDeviceKey("public_key is not a usable Ed25519 key (small order or non-canonical encoding)")
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    if ticket.device_key is not None and ticket.device_key != canonical:
        raise Conflict("this ticket is already bound to another device", code="device_already_bound",
                       details={"ticket_id": ticket.ticket_id})
    if ticket.status != "active":
        raise Conflict(f"the ticket is {ticket.status}", code="ticket_not_active",
                       details={"ticket_id": ticket.ticket_id})
    ticket.device_key = canonical
    session.add(ticket)
    session.flush()
    return raw
