"""Offline QR verifications per second per core: Ed25519 vs SM2, and SM2 implementations side by side.

What a gate does offline for every code (issue 16, item 4): ``ticketing.qr.verify_qr`` on a kind-1
payload with the keys of ``GET /v1/gates/keys``. Measured on one thread (one core), as verifications
per CPU second (``time.process_time``, robust on a loaded machine) and per wall second.

SM2 implementations (GB/T 32918.2 with SM3 and the default signer ID), each first checked for
correctness (accepts a signature made by Tongsuo, refuses an altered one) and then timed on the raw
verification of the 84-byte signed part of a code:

- ``tongsuopy`` (Tongsuo, the OpenSSL fork of the GM algorithms): what ``ticketing.qr`` uses;
- ``gmalglib`` (C extension);
- ``gmssl`` (pure Python);
- ``smcryptopy`` (Rust through cffi; DER signatures only: a 64-byte ``r | s`` makes it panic and abort
  the whole process, so it is not safe at a gate whatever its speed).

Usage: ``.venv/bin/python bench/qr_verify.py [--seconds 2]``; prints one JSON document.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ticketing.py must not shadow the package

from ticketing.qr import IssuerKeys, generate_sm2_private_key, jwks_public_keys, verify_qr

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def _rate(fn: Callable[[int], None], items: int, seconds: float) -> dict[str, Any]:
    """Calls ``fn(i)`` for ``i`` cycling over ``items`` until ``seconds`` of CPU time have passed."""
    fn(0)  # warm up
    n, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    while True:
        for i in range(items):
            fn(i)
        n += items
        cpu = time.process_time() - cpu0
        if cpu >= seconds:
            break
    wall = time.perf_counter() - wall0
    return {"verifications": n, "per_cpu_second": round(n / cpu, 1), "per_wall_second": round(n / wall, 1),
            "us_per_verification_cpu": round(cpu / n * 1e6, 1)}


def _payloads(issuer: IssuerKeys, alg: str, count: int) -> list[str]:
    return [issuer.rotating_qr("tkt_" + os.urandom(12).hex(), now=T0, ttl_s=30, alg=alg)[0] for _ in range(count)]


def _split(payload: str) -> tuple[bytes, bytes]:
    raw = base64.urlsafe_b64decode(payload[3:] + "=" * (-len(payload[3:]) % 4))
    return raw[:-64], raw[-64:]


def _sm2_impls(point: bytes) -> dict[str, Callable[[bytes, bytes], bool]]:
    """name -> verify(data, r|s signature) -> bool, for every SM2 implementation installed."""
    impls: dict[str, Callable[[bytes, bytes], bool]] = {}
    from ticketing.qr import SM2PublicKey

    ours = SM2PublicKey(point)

    def tongsuo(data: bytes, sig: bytes) -> bool:
        try:
            ours.verify(sig, data)
            return True
        except InvalidSignature:
            return False

    impls["tongsuopy"] = tongsuo
    try:
        from gmalglib.sm2 import SM2

        g = SM2(pk=point)
        impls["gmalglib"] = lambda data, sig: bool(g.verify(data, sig))
    except ImportError:
        pass
    try:
        from gmssl import sm2 as gm

        c = gm.CryptSM2(private_key=None, public_key=point[1:].hex())
        impls["gmssl"] = lambda data, sig: bool(c.verify_with_sm3(sig.hex(), data))
    except ImportError:
        pass
    try:
        from smcryptopy import sm2 as sc

        pk = point[1:].hex()

        def smcrypto(data: bytes, sig: bytes) -> bool:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            return bool(sc.verify(b"1234567812345678", data, der, pk))

        impls["smcryptopy"] = smcrypto
    except ImportError:
        pass
    return impls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement (fast ones)")
    ap.add_argument("--slow-seconds", type=float, default=1.0, help="CPU seconds for the pure-Python and Rust ones")
    args = ap.parse_args()

    spec = (f"q1:{base64.b64encode(os.urandom(32)).decode()},"
            f"s1:sm2:{base64.b64encode(generate_sm2_private_key()).decode()}")
    issuer = IssuerKeys(spec)
    keys = jwks_public_keys(issuer.jwks())  # what an offline gate holds
    out: dict[str, Any] = {"benchmark": "qr_verify", "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                           "unit": "offline verifications per second on one core (one thread)"}

    full: dict[str, Any] = {}
    for alg in ("ed25519", "sm2"):
        codes = _payloads(issuer, alg, 64)
        for c in codes:  # correctness first
            assert verify_qr(c, keys, now=T0, ttl_s=30).kid == issuer.signing[alg]
        full[alg] = _rate(lambda i, codes=codes: verify_qr(codes[i], keys, now=T0, ttl_s=30), len(codes),
                          args.seconds)
    out["verify_qr"] = full

    # raw signature verifications on the same signed bytes
    ed_key = keys["q1"]
    ed_codes = [_split(c) for c in _payloads(issuer, "ed25519", 64)]
    raw: dict[str, Any] = {"ed25519 (cryptography/OpenSSL)": _rate(
        lambda i: ed_key.verify(ed_codes[i][1], ed_codes[i][0]), len(ed_codes), args.seconds)}
    sm_codes = [_split(c) for c in _payloads(issuer, "sm2", 64)]
    point = keys["s1"].point
    sm2: dict[str, Any] = {}
    for name, verify in _sm2_impls(point).items():
        data, sig = sm_codes[0]
        bad = sig[:40] + bytes([sig[40] ^ 1]) + sig[41:]
        correct = verify(data, sig) and not verify(data, bad) and not verify(data + b"x", sig)
        entry: dict[str, Any] = {"correct": correct}
        if correct:
            slow = name in ("gmssl", "smcryptopy")
            entry.update(_rate(lambda i, verify=verify: verify(*sm_codes[i]), 4 if slow else len(sm_codes),
                               args.slow_seconds if slow else args.seconds))
        sm2[name] = entry
    raw["sm2"] = sm2
    out["raw_signature"] = raw
    fastest = max((n for n, e in sm2.items() if e["correct"]), key=lambda n: sm2[n]["per_cpu_second"])
    out["fastest_correct_sm2"] = fastest
    out["sm2_vs_ed25519_verify_qr"] = round(full["sm2"]["per_cpu_second"] / full["ed25519"]["per_cpu_second"], 3)
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
