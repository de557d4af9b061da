"""Settings: one pydantic-settings class, read from the environment.

``MAAS_*`` variables plus the conventional ``DATABASE_URL``, ``REDIS_URL`` and
``STRIPE_*``. Secrets are ``SecretStr``. In development (the embedded
default) missing secrets are generated once and kept in ``MAAS_DATA_DIR`` so
`maas demo` runs on a bare machine; in production a missing or placeholder
secret stops start-up.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "xxx", "todo"}
#: Names of the generated secrets kept in ``<data_dir>/secrets.json`` in development.
GENERATED_SECRETS = ("jwt_secret", "pii_keys", "blind_index_key", "issuer_keys", "audit_key")


class SettingsError(Exception):
    """A missing or malformed setting; ``str()`` is one readable line (``lines``: every problem found)."""

    def __init__(self, message: str, *more: str) -> None:
        super().__init__(message)
        self.lines = [message, *more]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".maas")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAAS_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "MAAS_REDIS_URL"))

    # Signing and encryption keys.
    jwt_secret: SecretStr | None = None
    #: Personal-data encryption keyring: comma-separated ``<key_id>:<base64 32 bytes>``; the last is current.
    pii_keys: SecretStr | None = None
    #: HMAC key for blind indexes (look-ups of ID numbers without storing them in clear).
    blind_index_key: SecretStr | None = None
    #: QR issuer keys: comma-separated ``<kid>:[ed25519:|sm2:]<base64 32-byte key>``; the last of each alg signs.
    issuer_keys: SecretStr | None = None
    #: Audit log key (base64 32 bytes), never stored in the database: keys the hash chain (HMAC) and signs
    #: the head checkpoints (Ed25519) published to ``<data_dir>/audit-checkpoints.jsonl`` and the log.
    audit_key: SecretStr | None = None

    access_token_ttl_s: int = Field(default=900, gt=0)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)

    stripe_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_API_KEY", "MAAS_STRIPE_API_KEY")
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "MAAS_STRIPE_WEBHOOK_SECRET")
    )
    stripe_api_base: str | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_API_BASE", "MAAS_STRIPE_API_BASE")
    )
    #: Stripe's publishable key (pk_...): public by design; the buy page loads Stripe.js (Payment Element)
    #: with it when Stripe is configured, and offers the network-free sandbox otherwise.
    stripe_publishable_key: str | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_PUBLISHABLE_KEY", "MAAS_STRIPE_PUBLISHABLE_KEY")
    )
    #: The payment method of an order that names none (``stripe``, ``wechat``, ``alipay``, ``sandbox``);
    #: default: the first configured in that order, the sandbox outside production.
    default_payment_method: Literal["stripe", "wechat", "alipay", "sandbox"] | None = None
    #: Offer the network-free sandbox rail: default only when no real rail is configured; never in production.
    sandbox_payments: bool | None = None

    # WeChat Pay API v3 (docs/payments-wechat.md): merchant id, the mini-program's appid, the merchant's API
    # private key (PEM) and its certificate serial number, the APIv3 key (32 chars, decrypts notifications),
    # the platform's public key (PEM) and id to verify WeChat's signatures (or a directory of platform
    # certificates), where notifications are sent, and the API base (tests point it at a local server).
    wechat_pay_mchid: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_MCHID", "MAAS_WECHAT_PAY_MCHID"))
    wechat_pay_appid: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_APPID", "MAAS_WECHAT_PAY_APPID"))
    wechat_pay_private_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_PRIVATE_KEY", "MAAS_WECHAT_PAY_PRIVATE_KEY"))
    wechat_pay_cert_serial_no: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_CERT_SERIAL_NO", "MAAS_WECHAT_PAY_CERT_SERIAL_NO"))
    wechat_pay_apiv3_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_APIV3_KEY", "MAAS_WECHAT_PAY_APIV3_KEY"))
    wechat_pay_public_key: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_PUBLIC_KEY", "MAAS_WECHAT_PAY_PUBLIC_KEY"))
    wechat_pay_public_key_id: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_PUBLIC_KEY_ID", "MAAS_WECHAT_PAY_PUBLIC_KEY_ID"))
    wechat_pay_cert_dir: Path | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_CERT_DIR", "MAAS_WECHAT_PAY_CERT_DIR"))
    wechat_pay_notify_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_NOTIFY_URL", "MAAS_WECHAT_PAY_NOTIFY_URL"))
    wechat_pay_api_base: str | None = Field(default=None, validation_alias=AliasChoices(
        "WECHAT_PAY_API_BASE", "MAAS_WECHAT_PAY_API_BASE"))

    # Alipay (docs/payments-alipay.md): the app id, the app's private key and Alipay's public key (PEM, RSA2),
    # where asynchronous notifications are sent, and the gateway (tests point it at a local server).
    alipay_app_id: str | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_APP_ID", "MAAS_ALIPAY_APP_ID"))
    alipay_app_private_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_APP_PRIVATE_KEY", "MAAS_ALIPAY_APP_PRIVATE_KEY"))
    alipay_public_key: str | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_PUBLIC_KEY", "MAAS_ALIPAY_PUBLIC_KEY"))
    alipay_notify_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_NOTIFY_URL", "MAAS_ALIPAY_NOTIFY_URL"))
    alipay_gateway: str | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_GATEWAY", "MAAS_ALIPAY_GATEWAY"))
    #: the merchant's Alipay user id (2088...): a notification of a payment to another seller is not ours to ticket
    alipay_seller_id: str | None = Field(default=None, validation_alias=AliasChoices(
        "ALIPAY_SELLER_ID", "MAAS_ALIPAY_SELLER_ID"))

    # Ticketing: offer/order lifetimes, QR freshness, ticket validity around a leg, platform fare and refund files.
    offer_ttl_s: int = Field(default=600, gt=0)
    order_payment_ttl_s: int = Field(default=900, gt=0)
    #: Seats one account may hold unpaid (open offers and unpaid orders) on one departure, and in total.
    seat_holds_per_departure: int = Field(default=9, ge=1)
    seat_holds_per_account: int = Field(default=18, ge=1)
    qr_ttl_s: int = Field(default=30, gt=0)
    ticket_valid_before_s: int = Field(default=7200, ge=0)
    ticket_valid_after_s: int = Field(default=7200, ge=0)
    fare_agreements_file: Path | None = None
    operator_fare_tables_file: Path | None = None
    refund_rules_file: Path | None = None

    # Web front ends (maas/web, served under /app): the map's tile URL template
    # (e.g. ``https://tiles.example/{z}/{x}/{y}.png``); empty: the map draws on a plain background.
    map_tile_url: str = ""
    map_tile_attribution: str = ""

    # Face credentials (ticketing.faces). Threshold: None = the calibrated default of the encoder
    # (ticketing.credentials.face.DEFAULT_THRESHOLD); recalibrate with `maas faces calibrate`.
    face_threshold: float | None = Field(default=None, gt=0, lt=4)
    #: Refuse face validations that carry no passed liveness verdict from the gate.
    face_require_liveness: bool = False
    #: Templates are deleted this many days after the traveller's last leg ends.
    face_retention_days: int = Field(default=30, ge=0)
    face_max_image_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    #: Gates allowed to send their own embeddings instead of images: comma-separated gate ids, "*" all, "" none.
    face_embedding_gates: str = "*"

    #: Serve ``/docs``, ``/redoc`` and ``/openapi.json``; unset = yes, except in production.
    expose_docs: bool | None = None
    #: Show the server and Python versions in ``GET /health``; unset = yes, except in production.
    expose_version: bool | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    #: ``group=requests/seconds`` per client (bearer token or address); 0 requests disables a group.
    rate_limits: str = "auth=30/60,plan=240/60,gates=1200/60,offers=20/60"

    #: Reverse proxies whose ``X-Forwarded-For`` is believed: comma-separated addresses or CIDR networks
    #: (e.g. ``10.0.0.0/8,127.0.0.1``); empty = none, the peer address is the client.
    trusted_proxies: str = ""
    #: Failed logins per account (phone number) before backoff; then one attempt per backoff period, which
    #: doubles from ``login_backoff_s`` up to ``login_backoff_max_s``; failures are forgotten after a quiet
    #: ``login_failure_window_s`` or a successful login.
    login_free_failures: int = Field(default=5, ge=1)
    login_backoff_s: int = Field(default=30, gt=0)
    login_backoff_max_s: int = Field(default=900, gt=0)
    login_failure_window_s: int = Field(default=24 * 3600, gt=0)
    #: An address the account logged in from keeps a failed-login budget of its own this long (so an
    #: attacker elsewhere cannot lock the owner out).
    login_known_address_days: int = Field(default=30, gt=0)

    # Regulator views (maas.audit_views): counts of 1..k-1 people are suppressed in metrics and exports.
    regulator_k_anonymity: int = Field(default=5, ge=2, le=1000)

    # Routing defaults.
    walk_radius_m: float = Field(default=500.0, gt=0)
    walk_speed_m_s: float = Field(default=1.3, gt=0)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://", "sqlite://")):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        return value

    @field_validator("default_payment_method", "wechat_pay_mchid", "alipay_app_id", "sandbox_payments",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # docker-compose passes unset variables as empty strings
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        from maas.ratelimit import parse_limits

        parse_limits(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        from maas.ratelimit import parse_networks

        parse_networks(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    # Derived -----------------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'maas.db').resolve()}"
        url = self.database_url
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url

    @property
    def database_backend(self) -> str:
        return "sqlite" if self.sqlalchemy_url.startswith("sqlite") else "postgresql"

    @property
    def redis_backend(self) -> str:
        return "redis" if self.redis_url else "in-process"

    @property
    def docs_enabled(self) -> bool:
        return self.expose_docs if self.expose_docs is not None else self.environment != "production"

    @property
    def version_exposed(self) -> bool:
        return self.expose_version if self.expose_version is not None else self.environment != "production"

    @property
    def platform_dir(self) -> Path:
        """Platform fare configuration: ``fare_agreements.json`` (cross-operator transfer discounts) and
        ``operator_fare_tables.json`` (fares of feeds without fare files); the ``*_file`` settings override."""
        return self.data_dir / "platform"

    @property
    def timetable_dir(self) -> Path:
        return self.data_dir / "timetables"

    def secret(self, name: str) -> str:
        """The value of a secret setting; raises SettingsError when it is missing."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise SettingsError(f"setting MAAS_{name.upper()} is missing")
        return value.get_secret_value()


def _generate_secret(name: str) -> str:
    if name == "jwt_secret":
        return "j1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "blind_index_key":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "pii_keys":
        return "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "issuer_keys":
        return "q1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "audit_key":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    raise KeyError(name)


def _fill_development_secrets(settings: Settings) -> Settings:
    """Generate missing secrets once and keep them beside the database (development only)."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in missing:
        if name == "jwt_secret" and name in stored and not _is_keyring(stored[name]):
            del stored[name]  # an HS256 secret from before tokens were signed with Ed25519 keys
        if name not in stored:
            stored[name] = _generate_secret(name)
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
        os.replace(tmp, path)
    return settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})


def load_settings(**overrides: object) -> Settings:
    """Read and check the settings; raise SettingsError with one readable line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"][0] if err["loc"] else "?"
        name = str(loc).upper()
        if not name.startswith(("MAAS_", "DATABASE_URL", "REDIS_URL", "STRIPE_", "WECHAT_PAY_", "ALIPAY_")):
            name = f"MAAS_{name}"
        raise SettingsError(f"invalid setting {name}: {err['msg']}") from None
    rail_problems = payment_rail_problems(settings)
    if rail_problems:
        raise SettingsError(*rail_problems)
    if settings.environment == "production":
        from maas.keys import production_problems

        def value(name: str) -> str | None:
            secret: SecretStr | None = getattr(settings, name)
            return None if secret is None else secret.get_secret_value()

        problems = production_problems({
            **{f"MAAS_{name.upper()}": value(name) for name in GENERATED_SECRETS},
            "STRIPE_API_KEY": value("stripe_api_key"), "STRIPE_WEBHOOK_SECRET": value("stripe_webhook_secret")})
        if problems:
            raise SettingsError(*problems)
        if settings.database_url is None:
            raise SettingsError("setting DATABASE_URL is required in production")
        if settings.redis_url is None:
            raise SettingsError("setting REDIS_URL is required in production")
        return settings
    settings = _fill_development_secrets(settings)
    if not _is_keyring(settings.secret("jwt_secret")):
        raise SettingsError("setting MAAS_JWT_SECRET must be Ed25519 keys '<kid>:<base64 32-byte seed>,...' "
                            "(run 'maas keys generate')")
    return settings


#: Settings each payment rail needs once its first one is set (the rail is off while that one is unset).
PAYMENT_RAIL_SETTINGS = {
    "WeChat Pay": ("wechat_pay_mchid", ("wechat_pay_appid", "wechat_pay_private_key", "wechat_pay_cert_serial_no",
                                        "wechat_pay_apiv3_key", "wechat_pay_notify_url")),
    "Alipay": ("alipay_app_id", ("alipay_app_private_key", "alipay_public_key", "alipay_notify_url")),
}


def payment_rail_problems(settings: Settings) -> list[str]:
    """One line per missing setting of a rail that is switched on (a half-configured rail never starts)."""
    problems = []
    for rail, (switch, needed) in PAYMENT_RAIL_SETTINGS.items():
        if not getattr(settings, switch):
            continue
        for name in needed:
            value = getattr(settings, name)
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if not text or not str(text).strip():
                problems.append(f"setting {name.upper()} is required when {switch.upper()} is set ({rail})")
    if settings.environment == "production":
        for name in ("wechat_pay_notify_url", "alipay_notify_url"):
            url = getattr(settings, name)
            if url and not url.startswith("https://"):
                problems.append(f"setting {name.upper()} must be an https:// URL in production (the provider "
                                "refuses others)")
    if settings.wechat_pay_mchid and not (settings.wechat_pay_public_key or settings.wechat_pay_cert_dir):
        problems.append("setting WECHAT_PAY_PUBLIC_KEY (with WECHAT_PAY_PUBLIC_KEY_ID) or WECHAT_PAY_CERT_DIR is "
                        "required to verify WeChat Pay's signatures")
    return problems


def _is_keyring(text: str) -> bool:
    from maas.keys import KeyProblem, parse_keyring

    try:
        parse_keyring(text)
    except KeyProblem:
        return False
    return True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests override with ``get_settings.cache_clear()`` or dependency overrides)."""
    return load_settings()
