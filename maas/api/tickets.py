"""GET /v1/tickets, GET /v1/tickets/{id}, GET /v1/tickets/{id}/qr, POST /v1/tickets/{id}/device-key."""

from __future__ import annotations

import base64
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlmodel import Session, select

from maas import audit
from maas.api.deps import CurrentPassenger, SessionDep, SettingsDep
from maas.api.offers import Strict
from maas.errors import error_responses
from maas.journeys import now, runtime
from maas.models import Operator
from ticketing import qr, tickets
from ticketing.errors import Conflict, DeviceBound, InvalidDeviceKey, TicketNotFound
from ticketing.models import TicketLeg

router = APIRouter(tags=["tickets"])


class DeviceKeyIn(Strict):
    public_key: str = Field(min_length=40, max_length=64, description="base64url Ed25519 public key (32 bytes)")


@router.get("/v1/tickets")
def list_tickets(session: SessionDep, principal: CurrentPassenger) -> dict[str, Any]:
    """`{"tickets": [Ticket, ...]}` of the caller (API.md Ticket shape, traveller masked)."""
    return {"tickets": [tickets.ticket_view(session, t)
                        for t in tickets.list_tickets(session, user_id=principal.subject)]}


@router.get("/v1/tickets/{ticket_id}", responses=error_responses(TicketNotFound))
def get_ticket(ticket_id: str, session: SessionDep, principal: CurrentPassenger) -> dict[str, Any]:
    return tickets.ticket_view(session, tickets.get_ticket(session, ticket_id, user_id=principal.subject))


def qr_alg_of_ticket(session: Session, ticket_id: str) -> str:
    """The issuer algorithm of a ticket's QR codes: ``sm2`` when an operator of one of its legs chose SM2
    (its gates may verify only SM2), else ``ed25519``; one code opens every leg's gate."""
    algs = set(session.exec(select(Operator.qr_alg).join(TicketLeg, TicketLeg.operator_id == Operator.operator_id)
                            .where(TicketLeg.ticket_id == ticket_id)).all())
    return qr.ALG_SM2 if qr.ALG_SM2 in algs else qr.ALG_ED25519


def _active(ticket: Any) -> None:
    if ticket.status != "active":
        raise Conflict(f"the ticket is {ticket.status}", code="ticket_not_active",
                       details={"ticket_id": ticket.ticket_id})


@router.get("/v1/tickets/{ticket_id}/qr", responses=error_responses(TicketNotFound, Conflict, DeviceBound))
def ticket_qr(ticket_id: str, request: Request, session: SessionDep, settings: SettingsDep,
              principal: CurrentPassenger, format: Literal["json", "svg", "png"] = "json") -> Any:
    """A fresh signed payload `{payload, expires_at, size_bytes}` (rotates every `qr_ttl_s`), or its image.

    A device-bound ticket gets none (`409 device_bound`): only the bound device's codes admit.
    """
    ticket = tickets.get_ticket(session, ticket_id, user_id=principal.subject)
    _active(ticket)
    tickets.ensure_not_device_bound(ticket)
    payload, expires_at = runtime(request.app).issuer.rotating_qr(ticket_id, now=now(request.app),
                                                                  ttl_s=settings.qr_ttl_s,
                                                                  alg=qr_alg_of_ticket(session, ticket_id))
    if format == "json":
        return {"payload": payload, "expires_at": expires_at.isoformat(), "size_bytes": len(payload.encode())}
    data, media = qr.qr_image(payload, format)
    return Response(content=data, media_type=media, headers={"Cache-Control": "no-store",
                                                             "X-QR-Expires-At": expires_at.isoformat()})


@router.post("/v1/tickets/{ticket_id}/device-key",
             responses=error_responses(TicketNotFound, InvalidDeviceKey, Conflict))
def register_device_key(ticket_id: str, body: DeviceKeyIn, request: Request, session: SessionDep,
                        principal: CurrentPassenger) -> dict[str, Any]:
    """Binds the app's Ed25519 key; returns the issuer credential for offline QR codes (docs/qr-format.md)."""
    ticket = tickets.get_ticket(session, ticket_id, user_id=principal.subject)
    raw = tickets.register_device_key(session, ticket, public_key=body.public_key)
    cred = runtime(request.app).issuer.device_credential(ticket_id, device_key=raw, valid_from=ticket.valid_from,
                                                         valid_until=ticket.valid_until,
                                                         alg=qr_alg_of_ticket(session, ticket_id))
    audit.record(session, action="ticket.device_key", actor_id=principal.subject, actor_role=principal.role,
                 target=ticket_id, details={})
    return {"ticket_id": ticket_id, "credential": base64.urlsafe_b64encode(cred).rstrip(b"=").decode(),
            "valid_from": ticket.valid_from.isoformat(), "valid_until": ticket.valid_until.isoformat()}
