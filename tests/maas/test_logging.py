"""No personal data in any log line of a full request cycle."""

from __future__ import annotations

import logging

from maas.logging import mask_text


def test_no_personal_data_in_logs(client, caplog) -> None:  # noqa: ANN001
    phone, password, name, id_number = "13912345678", "pa55word-secret", "张三丰", "11010519491231002X"
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/auth/register", json={"phone": phone, "password": password, "name": name})
        tokens = client.post("/v1/auth/token", json={"phone": phone, "password": password}).json()
        client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        client.post("/v1/auth/register", json={"phone": phone, "password": password, "name": id_number})
        logging.getLogger("maas.test").info("user %s id %s token Bearer %s", phone, id_number, tokens["access_token"])
    text = "\n".join(r.getMessage() + " " + str(getattr(r, "msg", "")) for r in caplog.records)
    ours = next(h for h in logging.getLogger().handlers if getattr(h, "_maas", False))
    formatted = "\n".join(ours.format(r) for r in caplog.records)
    assert caplog.records, "the requests should have been logged"
    for secret in (phone, password, name, id_number, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in formatted, secret
    assert '"request_id"' in formatted
    assert "request" in text


def test_mask_text() -> None:
    assert mask_text("call 13912345678 now") == "call [phone] now"
    assert mask_text("id 11010519491231002X.") == "id [id-number]."
    assert "eyJ" not in mask_text("Authorization: Bearer eyJhbGciOi.abc.def")
