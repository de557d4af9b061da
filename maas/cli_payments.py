"""`maas payments methods` and `maas payments reconcile-bill`: the deployment's payment rails and their bills."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from maas.cli import CliError, _session_scope, _settings, _upgrade, app

payments_app = typer.Typer(no_args_is_help=True, help="Payment rails (Stripe, WeChat Pay, Alipay, sandbox).")
app.add_typer(payments_app, name="payments")


@payments_app.command("methods")
def payments_methods() -> None:
    """The payment methods an order may name here, and the default."""
    from maas.journeys import TicketingRuntime

    providers = TicketingRuntime(_settings()).providers
    typer.echo(json.dumps({"methods": list(providers.names), "default": providers.default}))


@payments_app.command("reconcile-bill")
def payments_reconcile_bill(
    provider: Annotated[str, typer.Option("--provider", help="wechat or alipay")],
    date: Annotated[str, typer.Option("--date", help="the provider's day, YYYY-MM-DD (China Standard Time)")],
    file: Annotated[Path | None, typer.Option("--file", help="a bill file already downloaded (else downloaded)")]
    = None,
) -> None:
    """Match the provider's daily bill with our payments and refunds; exit 1 when they disagree."""
    from maas.journeys import TicketingRuntime
    from ticketing.bills import reconcile_bill

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise CliError(f"--date takes YYYY-MM-DD (got {date!r})") from None
    rail = TicketingRuntime(_settings()).providers.find(provider)
    if rail is None or not hasattr(rail, "parse_bill"):
        raise CliError(f"{provider!r} is not a configured payment rail with daily bills (wechat, alipay)")
    raw = None
    if file is not None:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None
    _upgrade()
    try:
        with _session_scope() as session:
            report = reconcile_bill(session, source=rail, day=day, raw=raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise CliError(f"the bill is malformed: {exc}") from None
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    if not report.ok:
        raise typer.Exit(1)
