"""No cold start (issue 14, part 2): once `/health` says ready, no request compiles a kernel.

The proof is not a timing: in a fresh interpreter (kernels compiled by other tests would hide a miss) the
demo city is built and nothing is compiled before the app starts; the warm-up compiles (or loads from
numba's cache) the kernels, and then every kind of `/v1/plan` request — depart-at, arrive-by, departure
window, from coordinates, filtered, optimize=fare, max_fare — on the static timetable, with one feed's real
time and with two feeds' real time merged, adds no signature to any numba dispatcher. The detector
itself is shown to fire (a kernel called with a new array layout gains a signature).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = r'''
import datetime as dt, json, sys
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as rt

from maas.app import create_app
from maas.demo_server import DEMO_PASSWORD, build_demo
from maas.settings import load_settings
from routing import warmup as rw

data_dir = Path(sys.argv[1])
settings = load_settings(environment="test", data_dir=data_dir, log_level="WARNING",
                         rate_limits="auth=100000/60,plan=100000/60,gates=100000/60")
info = build_demo(settings)
city = Path(info["city_dir"])
admin = next(a for a in info["credentials"]["accounts"] if a["role"] == "admin")
SH = dt.timezone(dt.timedelta(hours=8))
day = dt.date.today() + dt.timedelta(days=1)


def trip_updates(feed: str) -> bytes:
    """Every trip of the feed 4 min late from its second stop, on `day` (those not running are unmatched)."""
    m = rt.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(dt.datetime.combine(day, dt.time(6, 0), SH).timestamp())
    for i, line in enumerate((city / feed / "trips.txt").read_text(encoding="utf-8").splitlines()[1:]):
        header = (city / feed / "trips.txt").read_text(encoding="utf-8").splitlines()[0].split(",")
        trip_id = line.split(",")[header.index("trip_id")]
        e = m.entity.add()
        e.id = str(i)
        e.trip_update.trip.trip_id = trip_id
        e.trip_update.trip.start_date = day.strftime("%Y%m%d")
        u = e.trip_update.stop_time_update.add()
        u.stop_sequence = 2
        u.departure.delay = 240
        u.arrival.delay = 240
    return m.SerializeToString()


def token(client) -> dict:
    r = client.post("/v1/auth/token", json={"phone": admin["phone"], "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def post_realtime(client, feed: str) -> dict:
    r = client.post(f"/v1/realtime/{feed}", content=trip_updates(feed),
                    headers={**token(client), "Content-Type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
    return r.json()


out = {"before_start": rw.kernel_signatures()}

# 2. the server under test: warm-up in its lifespan, then every kind of request
app = create_app(settings, warm_up=True)
at = dt.datetime.combine(day, dt.time(7, 30), SH)
q = lambda **kw: {"from": "yx-bus:RMGC", "to": "yx-coach:QSX", **kw}
iso = lambda t: t.isoformat()
requests = {
    "depart_at": q(depart_at=iso(at)),
    "arrive_by": q(arrive_by=iso(at + dt.timedelta(hours=3))),
    "window": q(depart_at=iso(at), window_s=3600),
    "coordinates": {"from": "27.8100,112.9100", "to": "yx-coach:QSX", "depart_at": iso(at)},
    "filtered": q(depart_at=iso(at), modes="BUS,SUBWAY,COACH", wheelchair="true", max_transfers=2),
    "fare": q(depart_at=iso(at), optimize="fare"),
    "max_fare": q(depart_at=iso(at), max_fare=100000),
}
with TestClient(app) as c:
    out["health"] = c.get("/health").json()
    ready = rw.kernel_signatures()
    found = {}
    for phase in ("static", "bus_realtime", "bus_and_metro_realtime"):
        if phase == "bus_realtime":
            out["rt_bus"] = post_realtime(c, "yx-bus")
        elif phase == "bus_and_metro_realtime":
            out["rt_metro"] = post_realtime(c, "yx-metro")
        for kind, params in requests.items():
            r = c.get("/v1/plan", params=params)
            assert r.status_code == 200, (kind, r.text)
            found[f"{phase}/{kind}"] = len(r.json()["itineraries"])
    out["found"] = found
    out["timetable"] = c.get("/health").json()["timetable"]
after = rw.kernel_signatures()
out["new"] = {k: sorted(set(after[k]) - set(ready[k])) for k in after if set(after[k]) - set(ready[k])}
out["ready_signatures"] = sum(len(v) for v in ready.values())

# 3. the detector fires: a kernel called with a new array layout (non-contiguous) gains a signature
from routing import kernels as K
a = np.full((3, 8), K.INF, dtype=np.int64)[:, ::2]
K._reset_state(np.zeros(4, np.int32), 0, a, a, a, a, np.full((3, 8), -1, np.int32)[:, ::2],
               np.full((3, 8), -2, np.int32)[:, ::2], np.zeros(4, np.bool_))
out["detector"] = sorted(set(rw.kernel_signatures()["_reset_state"]) - set(after["_reset_state"]))
print(json.dumps(out, default=str))
'''


def test_no_request_compiles_a_kernel_after_ready(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "DATABASE_URL", "REDIS_URL"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "data")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rt_bus"]["counts"]["matched"] > 0 and out["rt_metro"]["counts"]["matched"] > 0, out
    assert all(not sigs for sigs in out["before_start"].values()), "nothing compiled before the app starts"
    health = out["health"]
    assert health["ready"] is True and health["warmup"]["kernel_signatures"] > 0, health
    primed = health["warmup"]["primed"]  # in-process requests before listening: every kind of plan, answered
    assert {k: v[0] for k, v in primed.items() if k.startswith("plan_")} == {
        "plan_depart_at": 200, "plan_arrive_by": 200, "plan_range": 200, "plan_fare": 200}, primed
    assert set(out["timetable"]["realtime_feeds"]) == {"yx-bus", "yx-metro"}, out["timetable"]
    assert all(n > 0 for n in out["found"].values()), out["found"]
    assert out["new"] == {}, f"requests after ready compiled kernels: {out['new']}"
    assert out["detector"], "a new signature is detected (the check above can fail)"
