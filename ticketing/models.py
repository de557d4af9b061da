"""Ticketing tables: offers, orders, travellers, tickets and their legs, payments, refunds, validations.

Money is an ``int`` in minor units plus a currency column; times are
timezone-aware UTC. Personal data (traveller name and ID number) is stored
only encrypted (`ticketing.crypto.Keyring`, associated data bound to the row)
plus a blind index and the masked forms shown in responses.
"""

from __future__ import annotations

import datetime as dt
import secrets
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def new_id(prefix: str) -> str:
    """An opaque, unguessable id such as ``ord_3kq...`` (24 hex characters after the prefix)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kw)


def _opt_ts(**kw: Any) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), **kw)


class OrderStatus(StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    ticketed = "ticketed"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    expired = "expired"
    cancelled = "cancelled"


class LegStatus(StrEnum):
    unused = "unused"
    used = "used"
    refunded = "refunded"
    expired = "expired"


class Offer(SQLModel, table=True):
    """A priced, re-checked itinerary for some rider categories; valid until ``expires_at``.

    ``legs``: the transit legs as re-computed from the timetable (API leg dicts plus
    ``leg_index``, ``reserved``); ``quotes``: per traveller ``{"rider_category", "total",
    "legs": [{"leg_index", "price", "standalone"}]}``; ``holds``: ``[{"key", "hold_id",
    "seats": [int]}]`` seat holds in Redis.
    """

    __tablename__ = "ticket_offers"

    offer_id: str = Field(default_factory=lambda: new_id("off"), primary_key=True, max_length=40)
    user_id: str = Field(max_length=40, index=True)
    itinerary_id: str | None = Field(default=None, max_length=64)
    legs: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    quotes: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    holds: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    total_amount: int
    currency: str = Field(max_length=3)
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))


class Order(SQLModel, table=True):
    __tablename__ = "ticket_orders"
    __table_args__ = (sa.UniqueConstraint("user_id", "idempotency_key", name="uq_ticket_orders_idempotency"),)

    order_id: str = Field(default_factory=lambda: new_id("ord"), primary_key=True, max_length=40)
    user_id: str = Field(max_length=40, index=True)
    offer_id: str = Field(foreign_key="ticket_offers.offer_id", max_length=40, unique=True)
    status: str = Field(default=OrderStatus.pending_payment.value, max_length=24, index=True)
    total_amount: int
    currency: str = Field(max_length=3)
    provider: str = Field(max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64)
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    expires_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)


class Traveler(SQLModel, table=True):
    """A named traveller of an order; name and ID number only encrypted, indexed and masked."""

    __tablename__ = "ticket_travelers"

    traveler_id: str = Field(default_factory=lambda: new_id("trv"), primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="ticket_orders.order_id", max_length=40, index=True)
    position: int
    rider_category: str = Field(max_length=32)
    id_type: str = Field(max_length=32)
    name_enc: str = Field(max_length=400)
    id_number_enc: str = Field(max_length=400)
    #: HMAC of the normalised ID number (purpose ``id_number:<id_type>``): look-ups without clear text.
    id_number_index: str = Field(max_length=64, index=True)
    name_masked: str = Field(max_length=100)
    id_number_masked: str = Field(max_length=64)


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"

    ticket_id: str = Field(default_factory=lambda: new_id("tkt"), primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="ticket_orders.order_id", max_length=40, index=True)
    traveler_id: str = Field(foreign_key="ticket_travelers.traveler_id", max_length=40, unique=True)
    user_id: str = Field(max_length=40, index=True)
    status: str = Field(default="active", max_length=16, index=True)
    issued_at: dt.datetime = _ts()
    valid_from: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    valid_until: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    #: Ed25519 public key (32 raw bytes, base64url) of the holder's device, for device-bound QR codes.
    device_key: str | None = Field(default=None, max_length=64)


class TicketLeg(SQLModel, table=True):
    """One entitlement: a ride on one trip between two stops on one service date."""

    __tablename__ = "ticket_legs"

    leg_id: str = Field(default_factory=lambda: new_id("leg"), primary_key=True, max_length=40)
    ticket_id: str = Field(foreign_key="tickets.ticket_id", max_length=40, index=True)
    position: int
    leg_index: int  #: index of the leg in the offered itinerary (walking legs included)
    operator_id: str = Field(max_length=64, index=True)
    feed_id: str = Field(max_length=64)
    mode: str = Field(max_length=16)
    route_id: str = Field(max_length=200)
    trip_id: str = Field(max_length=200)
    service_date: dt.date
    from_stop_id: str = Field(max_length=200)
    #: parent station of the boarding stop: a gate may stand at the station rather than the platform
    from_station_id: str | None = Field(default=None, max_length=200)
    to_stop_id: str = Field(max_length=200)
    departure: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    arrival: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    distance_m: int | None = None
    seat: str | None = Field(default=None, max_length=16)
    valid_from: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))
    valid_until: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    status: str = Field(default=LegStatus.unused.value, max_length=16, index=True)
    price_amount: int
    standalone_amount: int | None = None
    currency: str = Field(max_length=3)
    used_at: dt.datetime | None = _opt_ts()
    used_gate_id: str | None = Field(default=None, max_length=40)


class Payment(SQLModel, table=True):
    """A charge of an order at a provider (one PaymentIntent per order)."""

    __tablename__ = "ticket_payments"

    payment_id: str = Field(default_factory=lambda: new_id("pay"), primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="ticket_orders.order_id", max_length=40, unique=True)
    provider: str = Field(max_length=16)
    provider_ref: str = Field(max_length=255, unique=True)
    client_secret: str | None = Field(default=None, max_length=255)
    #: what the app or mini-program needs to pay (``wx.requestPayment`` arguments, Alipay ``trade_no``...)
    client_params: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    #: the provider's own transaction id once paid (WeChat ``transaction_id``, Alipay ``trade_no``)
    provider_txn: str | None = Field(default=None, max_length=64)
    #: pending | succeeded | failed (this attempt; may still succeed) | cancelled (the order expired; the provider
    #: is still to be told) | closed (can no longer be paid) | refunded
    status: str = Field(default="pending", max_length=16, index=True)
    amount: int
    currency: str = Field(max_length=3)
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    paid_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True), index=True)


class Refund(SQLModel, table=True):
    __tablename__ = "ticket_refunds"

    refund_id: str = Field(default_factory=lambda: new_id("rfd"), primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="ticket_orders.order_id", max_length=40, index=True)
    leg_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    amount: int  #: paid back to the passenger
    fee: int  #: kept by the refund rules
    currency: str = Field(max_length=3)
    #: pending (intent recorded, legs locked; the provider may or may not have paid yet) | succeeded | failed
    status: str = Field(default="pending", max_length=16, index=True)
    provider_ref: str | None = Field(default=None, max_length=255, index=True)
    reason: str = Field(default="requested_by_customer", max_length=40)
    #: per leg: ``[{"leg_id", "ticket_id", "amount", "fee"}]`` (what each leg gives back and keeps)
    parts: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime | None = _opt_ts()


class ProviderEvent(SQLModel, table=True):
    """Every provider event applied once: a duplicate delivery finds its id here."""

    __tablename__ = "ticket_provider_events"

    event_id: str = Field(primary_key=True, max_length=255)
    provider: str = Field(max_length=16)
    type: str = Field(max_length=64)
    order_id: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=40)
    received_at: dt.datetime = _ts()


class GateValidation(SQLModel, table=True):
    """One gate decision (online scan or uploaded offline tap), accepted or rejected."""

    __tablename__ = "ticket_validations"
    __table_args__ = (sa.UniqueConstraint("gate_id", "tap_id", name="uq_ticket_validations_tap"),)

    validation_id: str = Field(default_factory=lambda: new_id("val"), primary_key=True, max_length=40)
    gate_id: str = Field(max_length=40, index=True)
    operator_id: str = Field(max_length=64, index=True)
    stop_id: str = Field(max_length=200)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    leg_id: str | None = Field(default=None, max_length=40, index=True)
    result: str = Field(max_length=16)  # accepted | rejected
    reason: str | None = Field(default=None, max_length=40)
    method: str = Field(max_length=16)  # qr | device_qr | id_number | face
    source: str = Field(default="online", max_length=16)  # online | offline
    tap_id: str | None = Field(default=None, max_length=100)
    flag: str | None = Field(default=None, max_length=16)  # replay | conflict (offline taps)
    scanned_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    recorded_at: dt.datetime = _ts()
