"""The `maas` command line (Typer).

Every failure prints one readable line on stderr and exits non-zero; a
traceback means a bug.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from maas.settings import SettingsError, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="MaaS backend: journey planning, e-ticketing and clearing.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Accounts.")
gates_app = typer.Typer(no_args_is_help=True, help="Gate devices.")
jobs_app = typer.Typer(no_args_is_help=True, help="Background jobs.")
keys_app = typer.Typer(no_args_is_help=True, help="Signing and encryption keys.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(gates_app, name="gates")
app.add_typer(jobs_app, name="jobs")
app.add_typer(keys_app, name="keys")


class CliError(Exception):
    """A failure to report as one line, exit code 1."""


def _settings():  # noqa: ANN202
    return get_settings()


def _session_scope():  # noqa: ANN202
    from maas.db import get_engine, session_scope

    return session_scope(get_engine(_settings()))


def _upgrade() -> None:
    from maas.db import upgrade_database

    upgrade_database(_settings())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    _upgrade()
    typer.echo(f"database up to date ({_settings().database_backend})")


@users_app.command("create")
def users_create(
    role: Annotated[str, typer.Option(help="admin, regulator, operator or passenger")],
    phone: Annotated[str, typer.Option(help="login phone number")],
    password: Annotated[str, typer.Option(help="at least 8 characters")],
    operator: Annotated[str | None, typer.Option("--operator", help="operator id (operator staff only)")] = None,
    name: Annotated[str, typer.Option(help="display name")] = "staff",
) -> None:
    """Create an admin, regulator, operator staff or passenger account."""
    from maas import accounts

    _upgrade()
    with _session_scope() as session:
        user = accounts.create_user(session, phone=phone, password=password, name=name, role=role,
                                    operator_id=operator)
        typer.echo(json.dumps({"user_id": user.user_id, "role": user.role, "operator_id": user.operator_id}))


def _set_disabled(user_id: str, disabled: bool) -> None:
    from maas import accounts
    from maas.redis_client import get_redis

    _upgrade()
    with _session_scope() as session:
        user = accounts.set_disabled(session, _settings(), user_id=user_id, disabled=disabled,
                                     markers=get_redis(_settings()))
        typer.echo(json.dumps({"user_id": user.user_id, "disabled": user.disabled}))


@users_app.command("disable")
def users_disable(user_id: Annotated[str, typer.Argument(help="the account's user id (usr_...)")]) -> None:
    """Disable an account: no more logins; its refresh and access tokens stop working at once."""
    _set_disabled(user_id, True)


@users_app.command("enable")
def users_enable(user_id: Annotated[str, typer.Argument(help="the account's user id (usr_...)")]) -> None:
    """Enable a disabled account again (it logs in anew; old tokens stay revoked)."""
    _set_disabled(user_id, False)


@gates_app.command("create")
def gates_create(
    operator: Annotated[str, typer.Option("--operator", help="operator id owning the gate")],
    stop: Annotated[str | None, typer.Option("--stop", help="stop id where the gate stands")] = None,
    roaming: Annotated[bool, typer.Option("--roaming", help="no stop: may validate at any stop of the operator")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Register a gate device; prints its bearer token once (it is stored hashed).

    A gate validates only at its ``--stop`` (or that stop's parent station); a gate without a stop
    validates nowhere unless it is registered ``--roaming``.
    """
    from maas import accounts

    _upgrade()
    with _session_scope() as session:
        gate, token = accounts.create_gate(session, operator_id=operator, stop_id=stop, roaming=roaming)
        out = {"gate_id": gate.gate_id, "token": token}
    typer.echo(json.dumps(out) if as_json else f"gate {out['gate_id']}\ntoken {out['token']}")


@jobs_app.command("run")
def jobs_run(name: Annotated[str | None, typer.Argument(help="one job; all due jobs when omitted")] = None) -> None:
    """Run due background jobs once (idempotent)."""
    from maas import jobs

    _upgrade()
    results = jobs.run_jobs(_settings(), name)
    for job_name, result in results.items():
        typer.echo(f"{job_name}: {result}")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a complete, strong set of keys as environment lines (for an .env file; keep it secret)."""
    from maas.keys import generate

    typer.echo("# maas keys generate: JWT (Ed25519), personal data (AES-256), blind index (HMAC), "
               "QR issuer (Ed25519 and SM2)")
    for name, value in generate().items():
        typer.echo(f"{name}={value}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the API with the configured database and Redis."""
    import uvicorn

    _upgrade()
    # proxy_headers off: the app believes X-Forwarded-For only from MAAS_TRUSTED_PROXIES (maas.ratelimit).
    uvicorn.run("maas.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None,
                proxy_headers=False, server_header=False)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    history: Annotated[bool | None, typer.Option(
        "--history/--no-history", help="seed a week of past sales, validations and a settlement run into a new "
        "demo database (default: MAAS_DEMO_HISTORY, on)")] = None,
) -> None:
    """Build the demo city, import it, seed accounts and serve the API (embedded default)."""
    from maas import demo_server

    demo_server.run(host=host, port=port, history=history)


def _one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    code = getattr(exc, "code", None)
    line = " ".join(str(message).split())
    return f"error: {line}" + (f" [{code}]" if code else "")


def main(argv: list[str] | None = None) -> int:
    import sqlalchemy.exc
    from typer.exceptions import TyperException

    from maas.errors import domain_error_classes
    from maas.logging import configure_logging

    # Log lines go to stderr (stdout carries the commands' output, e.g. JSON); the server reconfigures.
    configure_logging("WARNING", json=False)
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and result:
            return result
    except TyperException as exc:  # usage errors from the (vendored) click parser
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            return 2
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {' '.join(message.split())}{hint}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except sqlalchemy.exc.OperationalError as exc:
        typer.echo("error: the database is not reachable: " + " ".join(str(exc.orig).split())[:200], err=True)
        return 1
    except SettingsError as exc:
        for line in exc.lines:
            typer.echo(f"error: {line}", err=True)
        return 2
    except (CliError, *domain_error_classes()) as exc:
        typer.echo(_one_line(exc), err=True)
        return 1
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})".rstrip(" ()"), err=True)
        return 1
    return 0


def _entry() -> None:
    sys.exit(main())


# Commands of the domain areas register themselves on `app`.
from maas import cli_domains, cli_payments, cli_stops  # noqa: E402,F401
