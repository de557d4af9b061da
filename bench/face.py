"""Face credential latency on one core: enrolment/gate encode and template verification.

Usage::

    .venv/bin/python bench/face.py [--images DIR] [--repeat N] [--limit N] [--json]

``DIR`` defaults to ``$MAAS_SHARED_DATA/faces`` (or ``../shared/data/faces``
beside the repository). Every JPEG/PNG under it is encoded ``--repeat``
times; photos refused (no face, several faces) are timed separately, not
mixed into the encode figures. Prints median and p95 in milliseconds:

- ``encode``: bytes -> embedding (decode, EXIF, HOG detection, landmarks, ResNet);
- ``verify``: sealed template -> decision (AES-GCM open + distance);
- ``gate``: ``encode`` of the probe + ``verify``, what a face gate waits for.

Threads are pinned to one core (BLAS/OpenMP variables and CPU affinity) so
numbers compare across machines and with the other benches.
"""

from __future__ import annotations

import os

# Before numpy/dlib load: one core, no hidden thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ticketing.credentials.face import (  # noqa: E402
    DlibFaceEncoder,
    FaceImageError,
    open_template,
    seal_template,
    verify,
)
from ticketing.crypto import Keyring  # noqa: E402


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "not pinned (no sched_setaffinity)"


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    if ms.size == 0:
        return {"n": 0, "median_ms": float("nan"), "p95_ms": float("nan")}
    return {"n": int(ms.size), "median_ms": round(float(np.median(ms)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def main(argv: list[str] | None = None) -> int:
    default_root = Path(os.environ.get("MAAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / "faces"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=default_root)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0 = all)")
    parser.add_argument("--verify-rounds", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    pinned = _pin_one_core()
    files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"no images under {args.images}", file=sys.stderr)
        return 1

    encoder = DlibFaceEncoder()
    started = time.perf_counter()
    encoder.load()
    load_s = time.perf_counter() - started

    encode_s: list[float] = []
    refused_s: list[float] = []
    refused: dict[str, int] = {}
    embeddings: list[np.ndarray] = []
    blobs = [p.read_bytes() for p in files]
    for _ in range(args.repeat):
        for data in blobs:
            t0 = time.perf_counter()
            try:
                vector = encoder.encode(data)
            except FaceImageError as exc:
                refused_s.append(time.perf_counter() - t0)
                refused[exc.code] = refused.get(exc.code, 0) + 1
                continue
            encode_s.append(time.perf_counter() - t0)
            embeddings.append(vector)

    keyring = Keyring({"k1": Keyring.generate_key()})
    sealed = [seal_template(keyring, v, traveler_id=f"t{i}") for i, v in enumerate(embeddings)]
    rng = np.random.default_rng(0)
    verify_s: list[float] = []
    for _ in range(args.verify_rounds):
        i, j = rng.integers(0, len(embeddings), size=2)
        t0 = time.perf_counter()
        template = open_template(keyring, sealed[i], traveler_id=f"t{i}")
        verify(encoder, template, embeddings[j])
        verify_s.append(time.perf_counter() - t0)

    verify_median = float(np.median(verify_s)) if verify_s else 0.0
    result = {
        "images": len(files),
        "repeat": args.repeat,
        "threads": pinned,
        "model_load_s": round(load_s, 3),
        "encode": _stats(encode_s),
        "refused": {"by_code": refused, **_stats(refused_s)},
        "verify": _stats(verify_s),
        "gate": _stats([s + verify_median for s in encode_s]),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"face bench: {len(files)} images x {args.repeat}, {pinned}, model load {load_s:.2f} s")
        for name in ("encode", "verify", "gate"):
            s = result[name]
            print(f"  {name:<7} n={s['n']:<5} median {s['median_ms']:>9.3f} ms   p95 {s['p95_ms']:>9.3f} ms")
        r = result["refused"]
        print(f"  refused n={r['n']} {r['by_code']}  median {r['median_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
