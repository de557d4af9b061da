"""POST /v1/auth/register, /v1/auth/token, /v1/auth/refresh, /v1/auth/revoke; GET /v1/me."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from maas import accounts, login_guard, security
from maas.api.deps import CurrentPrincipal, RedisDep, SessionDep, SettingsDep
from maas.ratelimit import RateLimited, address_key, client_address, rate_limit
from maas.errors import AlreadyExists, BadRequest, InvalidCredentials, InvalidToken, TokenRevoked, error_responses

# Anyone may call these: keyed by client address, whatever Authorization header comes along.
router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[rate_limit("auth", by_address=True)])
me_router = APIRouter(tags=["auth"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterIn(Strict):
    phone: str = Field(min_length=6, max_length=32, examples=["13800000000"])
    password: str = Field(min_length=8, max_length=256)
    name: str = Field(min_length=1, max_length=100)


class AccountOut(BaseModel):
    user_id: str
    role: str
    operator_id: str | None = None


class TokenIn(Strict):
    phone: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    subject: str
    role: str
    operator_id: str | None = None


def _pair(pair: accounts.TokenPair) -> TokenOut:
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token,
                    token_type=pair.token_type, expires_in=pair.expires_in)


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=AccountOut,
             responses=error_responses(AlreadyExists, BadRequest, RateLimited))
def register(body: RegisterIn, session: SessionDep) -> AccountOut:
    user = accounts.create_user(session, phone=body.phone, password=body.password, name=body.name,
                                role="passenger")
    return AccountOut(user_id=user.user_id, role=user.role)


@router.post("/token", response_model=TokenOut,
             responses=error_responses(InvalidCredentials, RateLimited, login_guard.LoginThrottled))
def token(body: TokenIn, request: Request, session: SessionDep, settings: SettingsDep, redis: RedisDep) -> TokenOut:
    """Log in. Past a few failed logins an account gets one attempt per (doubling) backoff period; meanwhile
    every attempt, right password or not, is a 429 ``login_throttled`` with ``Retry-After``."""
    attempt = login_guard.begin(redis, settings, body.phone, address_key(client_address(request)))
    pair = accounts.login(session, settings, phone=body.phone, password=body.password)
    login_guard.succeeded(redis, settings, attempt)
    return _pair(pair)


@router.post("/refresh", response_model=TokenOut, responses=error_responses(InvalidToken, TokenRevoked))
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep, redis: RedisDep) -> TokenOut:
    return _pair(accounts.refresh(session, settings, refresh_token=body.refresh_token, markers=redis))


@router.post("/revoke", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(InvalidToken))
def revoke(body: RefreshIn, session: SessionDep, settings: SettingsDep, redis: RedisDep) -> None:
    """Log out: the login's refresh tokens and its access tokens stop working at once."""
    accounts.revoke_refresh_token(session, settings, refresh_token=body.refresh_token, markers=redis)


class JwkOut(BaseModel):
    kty: str
    crv: str
    alg: str
    use: str
    kid: str
    x: str


class JwksOut(BaseModel):
    keys: list[JwkOut]


@me_router.get("/.well-known/jwks.json", response_model=JwksOut)
def jwks(settings: SettingsDep) -> JwksOut:
    """The public keys (Ed25519, RFC 8037) that verify access and refresh tokens; they cannot sign."""
    return JwksOut.model_validate(security.jwks(settings))


@me_router.get("/v1/me", response_model=MeOut, responses=error_responses(InvalidToken))
def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(subject=principal.subject, role=principal.role, operator_id=principal.operator_id)
