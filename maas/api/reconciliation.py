"""POST /v1/reconciliations: an operator's own validation records (CSV) against ours."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile

from clearing import reconciliation
from clearing.errors import InvalidCsv
from clearing.schemas import ReconciliationPublic, reconciliation_public
from maas import audit
from maas.api.deps import SessionDep, require_roles
from maas.errors import BadRequest, Forbidden, MaasError, error_responses
from maas.security import Principal
from maas.validation import CONTROL_MESSAGE, BusinessDate, has_control_characters

router = APIRouter(tags=["clearing"])
OperatorStaff = Annotated[Principal, Depends(require_roles("operator"))]


class UnsupportedMediaType(MaasError):
    code = "unsupported_media_type"
    status = 415


async def csv_upload(request: Request) -> str:
    """The CSV text: a ``text/csv`` body, or the ``file`` part of a multipart form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form()
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise BadRequest("the multipart form needs a 'file' part holding the CSV", code="file_required")
        raw = await part.read()
    elif ctype in ("text/csv", "text/plain", "application/csv"):
        raw = await request.body()
    else:
        raise UnsupportedMediaType("send text/csv or multipart/form-data with a 'file' part")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidCsv("the CSV is not UTF-8") from None
    if has_control_characters(text):
        raise InvalidCsv("the CSV holds control characters (" + CONTROL_MESSAGE.removeprefix("must not contain ") + ")")
    return text


_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


@router.post("/v1/reconciliations", response_model=ReconciliationPublic, openapi_extra=_BODY,
             responses=error_responses(Forbidden, InvalidCsv, BadRequest, UnsupportedMediaType))
def reconcile(session: SessionDep, staff: OperatorStaff, text: Annotated[str, Depends(csv_upload)],
              window_start: Annotated[BusinessDate | None, Query()] = None,
              window_end: Annotated[BusinessDate | None, Query(description="exclusive")] = None,
              time_tolerance_s: Annotated[int, Query(ge=0, le=86_400)] = 300) -> ReconciliationPublic:
    """Columns ``leg_id`` and/or ``ticket_id``, ``validated_at`` (ISO 8601 with offset), optional ``gate_id``,
    ``amount`` (minor units). Malformed rows are reported by line number (the header is line 1)."""
    assert staff.operator_id is not None
    report = reconciliation.reconcile(session, operator_id=staff.operator_id, csv_text=text,
                                      window_start=window_start, window_end=window_end,
                                      time_tolerance_s=time_tolerance_s)
    audit.record(session, action="reconciliation.run", actor_id=staff.subject, actor_role=staff.role,
                 operator_id=staff.operator_id, details={"rows": report.rows, "matched": report.matched})
    return reconciliation_public(report)
