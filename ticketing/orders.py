"""Orders: real-name travellers for an offer, an explicit state machine, idempotent creation.

States (`ticketing.models.OrderStatus`)::

    pending_payment -> paid -> ticketed -> partially_refunded -> refunded
                    \\-> expired            \\------------------> refunded
                    \\-> cancelled

Any other change raises `IllegalTransition` (HTTP 409) naming the states.
Traveller names and ID numbers are encrypted with the personal-data keyring
(associated data ``traveler:<id>:<field>``), looked up by a blind index and
only ever shown masked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from ticketing.crypto import Keyring, mask_id_number, mask_name, normalize_identifier
from ticketing.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    OfferAlreadyOrdered,
    OfferExpired,
    OrderNotFound,
    TravelersMismatch,
    UnsupportedIdType,
)
from ticketing.fares.concessions import check_eligibility
from ticketing.fares.errors import NotEligible
from ticketing.identity import InvalidIdNumber, validate_cn_resident_id
from ticketing.models import Offer, Order, OrderStatus, Traveler, new_id

S = OrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.pending_payment: frozenset({S.paid, S.expired, S.cancelled}),
    S.paid: frozenset({S.ticketed, S.refunded}),
    S.ticketed: frozenset({S.partially_refunded, S.refunded}),
    S.partially_refunded: frozenset({S.partially_refunded, S.refunded}),
    S.refunded: frozenset(),
    S.expired: frozenset(),
    S.cancelled: frozenset(),
}

#: Accepted identity documents and the shape of their numbers (after `normalize_identifier`).
ID_FORMATS: dict[str, re.Pattern[str] | None] = {
    "cn_resident_id": None,  # GB 11643 check digit, see ticketing.identity
    "passport": re.compile(r"^[A-Z0-9]{5,17}$"),
    "hk_macau_permit": re.compile(r"^[HM]\d{8}(\d{2})?$"),  # 港澳居民来往内地通行证
    "taiwan_permit": re.compile(r"^\d{8}(\d{2})?$"),  # 台湾居民来往大陆通行证
    "foreign_permanent_resident": re.compile(r"^([A-Z]{3}\d{12}|9\d{16}[\dX])$"),  # 外国人永久居留身份证
}


def transition(order: Order, to: str, *, now: dt.datetime) -> None:
    """Moves ``order`` to state ``to`` or raises `IllegalTransition`."""
    if to not in TRANSITIONS.get(order.status, frozenset()):
        raise IllegalTransition(f"an order in state {order.status} cannot become {to}",
                                details={"order_id": order.order_id, "from": order.status, "to": to})
    order.status = to
    order.updated_at = now


@dataclass(frozen=True)
class TravelerIn:
    name: str
    id_type: str
    id_number: str
    rider_category: str
    birth_date: dt.date | None = None
    has_disability_document: bool = False


def check_document(id_type: str, id_number: str, *, today: dt.date) -> str:
    """The normalised ID number; raises `UnsupportedIdType` / `InvalidIdNumber`."""
    if id_type not in ID_FORMATS:
        raise UnsupportedIdType(f"ID type {id_type!r} is not accepted",
                                details={"id_type": id_type, "accepted": sorted(ID_FORMATS)})
    number = normalize_identifier(id_number)
    pattern = ID_FORMATS[id_type]
    ok = validate_cn_resident_id(number, today=today) if pattern is None else bool(pattern.match(number))
    if not ok:
        what = "fails its GB 11643 check digit or birth date" if pattern is None else "has not the expected format"
        raise InvalidIdNumber(f"the {id_type} number {what}", details={"id_type": id_type})
    return number


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def find_by_idempotency_key(session: Session, *, user_id: str, key: str) -> Order | None:
    return session.exec(select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)).first()


def create_order(session: Session, keyring: Keyring, *, user_id: str, offer_id: str,
                 travelers: list[TravelerIn], idempotency_key: str | None, body_hash: str, provider: str,
                 now: dt.datetime, payment_ttl_s: int) -> tuple[Order, bool]:
    """Creates the order of an offer; returns ``(order, created)``.

    The same ``idempotency_key`` with the same ``body_hash`` returns the
    existing order (``created=False``); with another body it raises
    `IdempotencyKeyReused`. An offer is ordered at most once.
    """
    if idempotency_key:
        existing = find_by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if existing is not None:
            if existing.request_hash != body_hash:
                raise IdempotencyKeyReused("this Idempotency-Key was used for a different request",
                                           details={"order_id": existing.order_id})
            return existing, False
    # The offer and whether it is ordered already, in one statement.
    ordered = sa.select(Order.order_id).where(Order.offer_id == Offer.offer_id).limit(1).scalar_subquery()
    found = session.execute(sa.select(Offer, ordered.label("ordered")).where(Offer.offer_id == offer_id)).first()
    offer = found[0] if found is not None else None
    if offer is None or offer.user_id != user_id:
        from ticketing.errors import OfferNotFound

        raise OfferNotFound("no such offer", details={"offer_id": offer_id})
    # The identity map holds objects weakly: keep the offer for the rest of the request (the seat holds and
    # the payment read it again) instead of loading it once more.
    session.info.setdefault("ticketing.offers", {})[offer_id] = offer
    if found.ordered is not None:
        return _ordered_already(session, user_id=user_id, offer_id=offer_id, idempotency_key=idempotency_key,
                                body_hash=body_hash)
    if offer.expires_at <= now:
        raise OfferExpired("the offer has expired; ask for a new one", details={"offer_id": offer_id})
    wanted = [q["rider_category"] for q in offer.quotes]
    if [t.rider_category for t in travelers] != wanted:
        raise TravelersMismatch(f"the offer was priced for rider categories {wanted}; give one traveller per "
                                "category in the same order", details={"expected": wanted})
    travel_date = dt.date.fromisoformat(offer.legs[0]["service_date"])
    order_id = new_id("ord")
    values = dict(order_id=order_id, user_id=user_id, offer_id=offer_id, status=OrderStatus.pending_payment.value,
                  total_amount=offer.total_amount, currency=offer.currency, provider=provider,
                  idempotency_key=idempotency_key, request_hash=body_hash, created_at=now, updated_at=now,
                  expires_at=now + dt.timedelta(seconds=payment_ttl_s))
    rows = []
    for position, t in enumerate(travelers):
        number = check_document(t.id_type, t.id_number, today=now.date())
        name = t.name.strip()
        elig = check_eligibility(t.rider_category, t.id_type, number, travel_date, birth_date=t.birth_date,
                                 has_disability_document=t.has_disability_document)
        if not elig.eligible:
            raise NotEligible(elig.reason or "not eligible for this rider category",
                              details={"traveler": position, "rider_category": t.rider_category,
                                       "reason_code": elig.code})
        traveler_id = new_id("trv")
        rows.append(dict(
            traveler_id=traveler_id, order_id=order_id, position=position, rider_category=t.rider_category,
            id_type=t.id_type,
            name_enc=keyring.encrypt(name, associated_data=f"traveler:{traveler_id}:name"),
            id_number_enc=keyring.encrypt(number, associated_data=f"traveler:{traveler_id}:id_number"),
            id_number_index=keyring.blind_index(number, f"id_number:{t.id_type}"),
            name_masked=mask_name(name), id_number_masked=mask_id_number(number)))
    session.flush()
    conn = session.connection()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # One statement, no savepoint: a concurrent request with the same key or offer makes it insert nothing.
    table = Order.__table__  # type: ignore[attr-defined]
    won = conn.execute(insert(table).values(**values).on_conflict_do_nothing().returning(table.c.order_id)).first()
    if won is None:
        return _ordered_already(session, user_id=user_id, offer_id=offer_id, idempotency_key=idempotency_key,
                                body_hash=body_hash)
    conn.execute(sa.insert(Traveler.__table__), rows)  # type: ignore[attr-defined]
    # the row just written, as a persistent object of the session (no read back)
    order = Order(**values)
    make_transient_to_detached(order)
    session.add(order)
    return order, True


def _ordered_already(session: Session, *, user_id: str, offer_id: str, idempotency_key: str | None,
                     body_hash: str) -> tuple[Order, bool]:
    """The offer has an order: a concurrent request with the same key (committed since our first look) made it
    for this very request, so answer as it would have; otherwise the offer is taken."""
    if idempotency_key:
        existing = find_by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if existing is not None and existing.request_hash == body_hash:
            return existing, False
        if existing is not None:
            raise IdempotencyKeyReused("this Idempotency-Key was used for a different request",
                                       details={"order_id": existing.order_id})
    raise OfferAlreadyOrdered("this offer already has an order", details={"offer_id": offer_id})


def get_order(session: Session, order_id: str, *, user_id: str | None = None, for_update: bool = False) -> Order:
    """The order (only the owner's when ``user_id`` is given); raises `OrderNotFound`."""
    stmt = select(Order).where(Order.order_id == order_id)
    if for_update:
        stmt = stmt.with_for_update()
    order = session.exec(stmt).first()
    if order is None or (user_id is not None and order.user_id != user_id):
        raise OrderNotFound("no such order", details={"order_id": order_id})
    return order


def list_travelers(session: Session, order_id: str) -> list[Traveler]:
    return list(session.exec(select(Traveler).where(Traveler.order_id == order_id).order_by(Traveler.position)))


def traveler_view(t: Traveler) -> dict[str, Any]:
    """Masked traveller (脱敏): never the clear name or number."""
    return {"traveler_id": t.traveler_id, "name": t.name_masked, "id_type": t.id_type,
            "id_number": t.id_number_masked, "rider_category": t.rider_category}
