"""`maas demo`: build the demo city 云溪市, import it, seed accounts and serve the API.

Runs on the embedded default (SQLite + in-process Redis) unless
``DATABASE_URL``/``REDIS_URL`` say otherwise. Re-running reuses the data
directory: feeds are re-imported (unchanged feeds hit the timetable cache) and
the accounts created the first time are printed again from
``<data_dir>/demo-credentials.json`` (owner-only file; demo secrets only).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import typer

from maas import accounts
from maas.db import get_engine, session_scope, upgrade_database
from maas.demo import write_demo_city
from maas.feeds import build_timetable, import_feed, list_sources
from maas.settings import Settings, get_settings
from maas.stations import seed_demo_stations

DEMO_PASSWORD = "demo-pass-123"
ACCOUNTS = (
    # role, operator kind (None: not operator staff), phone, name
    ("admin", None, "13800000000", "平台管理员"),
    ("regulator", None, "13800000001", "交通运输局审计员"),
    ("passenger", None, "13900000000", "王小明"),
)


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


def build_demo(settings: Settings) -> dict[str, Any]:
    """Write, import and seed the demo city; return what to print (URLs are added by `run`)."""
    upgrade_database(settings)
    engine = get_engine(settings)
    city_dir = settings.data_dir / "demo-city"
    feeds = write_demo_city(city_dir)
    # The city's platform fare configuration (cross-operator discounts, operator fare tables) becomes ours.
    settings.platform_dir.mkdir(parents=True, exist_ok=True)
    for item in (city_dir / "platform").iterdir():
        shutil.copyfile(item, settings.platform_dir / item.name)
    reports = []
    for feed in feeds:
        with session_scope(engine) as session:
            _, report = import_feed(session, path=feed.path, feed_id=feed.feed_id, operator_id=feed.operator_id,
                                    operator_name=feed.operator_name, operator_kind=feed.kind)
        reports.append(report)
    with session_scope(engine) as session:
        seed_demo_stations(session, feeds)  # station grades and types for the coverage audit

    creds_path = settings.data_dir / "demo-credentials.json"
    creds: dict[str, Any] = json.loads(creds_path.read_text(encoding="utf-8")) if creds_path.exists() else {}
    if not creds:
        creds = {"password": DEMO_PASSWORD, "accounts": [], "gates": []}
        with session_scope(engine) as session:
            for role, _, phone, name in ACCOUNTS:
                user = accounts.create_user(session, phone=phone, password=DEMO_PASSWORD, name=name, role=role)
                creds["accounts"].append({"role": role, "phone": phone, "user_id": user.user_id})
            for i, feed in enumerate(feeds):
                phone = f"1370000{i:04d}"
                user = accounts.create_user(session, phone=phone, password=DEMO_PASSWORD,
                                            name=f"{feed.operator_name}票务员", role="operator",
                                            operator_id=feed.operator_id)
                creds["accounts"].append({"role": "operator", "operator_id": feed.operator_id, "phone": phone,
                                          "user_id": user.user_id})
                # demo gates roam (they may validate at any stop of their operator): explicit, demo only
                gate, token = accounts.create_gate(session, operator_id=feed.operator_id, roaming=True)
                creds["gates"].append({"operator_id": feed.operator_id, "gate_id": gate.gate_id, "token": token})
        _write_private_json(creds_path, creds)

    with session_scope(engine) as session:
        sources = list_sources(session)
    tt, cached = build_timetable(settings, sources)
    return {"feeds": [r.to_dict() for r in reports], "stops": int(len(tt.stop_ids)), "from_cache": cached,
            "credentials": creds, "city_dir": str(city_dir)}


def run(host: str = "127.0.0.1", port: int = 8000, history: bool | None = None) -> None:
    import uvicorn

    from maas.app import create_app
    from maas.demo import history as demo_history

    settings = get_settings()
    info = build_demo(settings)
    # a week of past sales, validations, a refund and a settlement run (maas.demo.history); once per database
    past = "off (--no-history / MAAS_DEMO_HISTORY=0)"
    if demo_history.enabled(history):
        try:
            past = demo_history.seed_history(settings, info["credentials"]).summary()
        except Exception as exc:  # noqa: BLE001 - the demo serves without its past; say why, in one line
            past = "failed, served without it: " + " ".join(str(exc).split())[:300]
    base = f"http://{host}:{port}"
    lines = [
        "云溪市 demo city — MaaS backend",
        f"  storage: {settings.database_backend} + {settings.redis_backend} redis, data in {settings.data_dir.resolve()}",
        f"  feeds:   {', '.join(f['feed_id'] for f in info['feeds'])} ({info['stops']} stops, "
        f"timetable {'from cache' if info['from_cache'] else 'compiled'})",
        f"  history: {past}",
        f"  API:     {base}   docs: {base}/docs   health: {base}/health",
        f"  web:     {base}/app/   (passenger {base}/app/passenger, gate {base}/app/gate, "
        f"operator {base}/app/operator, regulator {base}/app/regulator)",
        f"  accounts (password {info['credentials']['password']}):",
    ]
    for acc in info["credentials"]["accounts"]:
        scope = f" of {acc['operator_id']}" if acc.get("operator_id") else ""
        lines.append(f"    {acc['role']:<10} phone {acc['phone']}{scope}")
    lines.append("  gate devices (Authorization: Bearer <token>):")
    for gate in info["credentials"]["gates"]:
        lines.append(f"    {gate['operator_id']:<14} {gate['gate_id']}  {gate['token']}")
    import datetime as dt

    depart = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0).isoformat()
    sample = f"{base}/v1/plan?from=yx-bus:RMGC&to=yx-coach:QSX&depart_at={depart.replace('+', '%2B')}"
    lines.append(f"  try:     curl '{sample}'")
    lines.append("  Ctrl-C stops the server.")
    typer.echo("\n".join(lines))
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, proxy_headers=False)
