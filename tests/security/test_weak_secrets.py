"""Issue 12 item 5: production must refuse weak secrets, at start-up, with one line each.

The attack: with ``MAAS_JWT_SECRET=password`` one passenger token is enough to crack the key offline and
forge an admin token; with ``STRIPE_WEBHOOK_SECRET=changeme`` anyone can sign a webhook that tickets an
unpaid order. Both configurations must stop the process before it serves a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys

import jwt
import pytest

from maas.settings import SettingsError, load_settings


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _strong() -> dict[str, str]:
    from maas.keys import generate

    env = generate()
    return {"jwt_secret": env["MAAS_JWT_SECRET"], "pii_keys": env["MAAS_PII_KEYS"],
            "blind_index_key": env["MAAS_BLIND_INDEX_KEY"], "issuer_keys": env["MAAS_ISSUER_KEYS"],
            "audit_key": env["MAAS_AUDIT_KEY"]}


def _production(tmp_path, **overrides):  # noqa: ANN001, ANN202
    values = {"environment": "production", "data_dir": tmp_path, "database_url": "postgresql://db/maas",
              "redis_url": "redis://r:6379/0", **_strong()}
    values.update(overrides)
    return load_settings(**values)


def test_generated_keys_are_accepted_in_production(tmp_path) -> None:  # noqa: ANN001
    s = _production(tmp_path, stripe_api_key="sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" * 2,
                    stripe_webhook_secret="whsec_" + "Zq0mJ4vT7pLk2Rw9XbN8cY1dFh3Gs6Ue")
    assert s.environment == "production"
    assert _strong() != _strong()  # fresh material every time


ZERO = _b64(bytes(32))
LOW = _b64(b"ab" * 16)


@pytest.mark.parametrize("overrides, fragment", [
    # The secret that was cracked offline, and other guessable or short ones.
    ({"jwt_secret": "password"}, "MAAS_JWT_SECRET"),
    ({"jwt_secret": "x" * 64}, "MAAS_JWT_SECRET"),
    ({"jwt_secret": "j1:" + ZERO}, "MAAS_JWT_SECRET"),
    ({"jwt_secret": "j1:" + LOW}, "MAAS_JWT_SECRET"),
    # Personal-data keys: malformed, all-zero, low-entropy, short, equal to the blind-index key.
    ({"pii_keys": "k"}, "MAAS_PII_KEYS"),
    ({"pii_keys": "k1:" + ZERO}, "MAAS_PII_KEYS"),
    ({"pii_keys": "k1:" + LOW}, "MAAS_PII_KEYS"),
    ({"pii_keys": "k1:" + _b64(os.urandom(16))}, "MAAS_PII_KEYS"),
    ({"pii_keys": "k1:" + _b64(os.urandom(32)) + ",k1:" + _b64(os.urandom(32))}, "MAAS_PII_KEYS"),
    ({"blind_index_key": "changeme"}, "MAAS_BLIND_INDEX_KEY"),
    ({"blind_index_key": ZERO}, "MAAS_BLIND_INDEX_KEY"),
    ("same-as-pii", "MAAS_BLIND_INDEX_KEY"),
    ({"issuer_keys": "q1:" + ZERO}, "MAAS_ISSUER_KEYS"),
    ({"issuer_keys": "q1:not-base64!"}, "MAAS_ISSUER_KEYS"),
    ({"audit_key": ZERO}, "MAAS_AUDIT_KEY"),
    ({"audit_key": "changeme"}, "MAAS_AUDIT_KEY"),
    # Stripe is the provider: its settings must be real.
    ({"stripe_api_key": "sk_test_local", "stripe_webhook_secret": "changeme"}, "STRIPE_WEBHOOK_SECRET"),
    ({"stripe_api_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"}, "STRIPE_WEBHOOK_SECRET"),
    ({"stripe_api_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe_webhook_secret": "whsec_" + "a" * 32},
     "STRIPE_WEBHOOK_SECRET"),
    ({"stripe_api_key": "changeme", "stripe_webhook_secret": "whsec_Zq0mJ4vT7pLk2Rw9XbN8cY1dFh3Gs6Ue"},
     "STRIPE_API_KEY"),
    ({"stripe_webhook_secret": "changeme"}, "STRIPE_WEBHOOK_SECRET"),
])
def test_production_refuses_weak_secrets(tmp_path, overrides, fragment) -> None:  # noqa: ANN001
    if overrides == "same-as-pii":
        key = _b64(os.urandom(32))
        overrides = {"pii_keys": "k1:" + key, "blind_index_key": key}
    with pytest.raises(SettingsError) as info:
        _production(tmp_path, **overrides)
    lines = info.value.lines
    assert any(fragment in line for line in lines) and not any("\n" in line for line in lines), lines


def test_one_key_is_not_reused_for_two_purposes(tmp_path) -> None:  # noqa: ANN001
    strong = _strong()
    seed = strong["issuer_keys"].split(":", 1)[1]
    with pytest.raises(SettingsError, match="MAAS_JWT_SECRET"):
        _production(tmp_path, jwt_secret="j1:" + seed, issuer_keys=strong["issuer_keys"])


def test_serve_stops_at_start_with_one_line(tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ, "MAAS_DATA_DIR": str(tmp_path), "MAAS_ENVIRONMENT": "production",
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x", "REDIS_URL": "redis://127.0.0.1:1/0",
           **{f"MAAS_{k.upper()}": v for k, v in _strong().items()}, "MAAS_JWT_SECRET": "password"}
    result = subprocess.run([sys.executable, "-m", "maas", "serve"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "MAAS_JWT_SECRET" in lines[0]


def test_keys_generate_prints_env_lines(tmp_path) -> None:  # noqa: ANN001
    result = subprocess.run([sys.executable, "-m", "maas", "keys", "generate"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if line and not line.startswith("#"))
    assert set(env) >= {"MAAS_JWT_SECRET", "MAAS_PII_KEYS", "MAAS_BLIND_INDEX_KEY", "MAAS_ISSUER_KEYS"}
    s = load_settings(environment="production", data_dir=tmp_path, database_url="postgresql://db/maas",
                      redis_url="redis://r:6379/0", **{k[len("MAAS_"):].lower(): v for k, v in env.items()})
    assert s.secret("jwt_secret") == env["MAAS_JWT_SECRET"]


# --- asymmetric access tokens: what the server publishes cannot mint a token ----------------------------------


def test_published_verifying_key_cannot_mint_an_admin_token(client, settings) -> None:  # noqa: ANN001
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = jwks.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys)
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": "maas", "sub": "usr_x", "typ": "access", "role": "admin", "jti": "j", "iat": now,
              "exp": now + dt.timedelta(minutes=5)}
    x = keys[-1]["x"]
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    # Algorithm confusion: the public key (in every encoding an attacker might try) used as an HMAC secret.
    for secret in (x, raw, settings.secret("jwt_secret")):
        forged = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": keys[-1]["kid"]})
        r = client.get("/v1/admin/operators", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401, r.text
    # A token signed by another Ed25519 key under our key id.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": keys[-1]["kid"]})
    assert client.get("/v1/admin/operators", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    # alg=none
    none = jwt.encode(claims, None, algorithm="none")
    assert client.get("/v1/admin/operators", headers={"Authorization": f"Bearer {none}"}).status_code == 401


def test_issued_tokens_verify_with_the_published_key(client, make_user) -> None:  # noqa: ANN001
    _, phone, password = make_user("passenger")
    token = client.post("/v1/auth/token", json={"phone": phone, "password": password}).json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    jwk = next(k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer="maas")
    assert claims["role"] == "passenger"


def test_development_replaces_an_old_hmac_secret(tmp_path) -> None:  # noqa: ANN001
    import json

    (tmp_path / "secrets.json").write_text(json.dumps({"jwt_secret": "an-old-hs256-secret-0123456789abcdef"}))
    s = load_settings(environment="development", data_dir=tmp_path)
    assert s.secret("jwt_secret").startswith("j1:")
