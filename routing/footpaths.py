"""Footpaths between stops: generated walking links, a user CSV, transfers.txt rules.

All functions work on global stop indices and return plain arrays; the
compiler turns them into the Timetable's CSR (``footpath_offsets`` /
``footpath_to`` / ``footpath_s`` / ``footpath_m``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routing.errors import RoutingError
from routing.feeds import EARTH_RADIUS_M, haversine_m


class FootpathsFileError(RoutingError):
    """The footpaths CSV given with ``CompileOptions.footpaths_file`` is malformed."""

    code = "invalid_footpaths_file"
    status = 422


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Earth-centred cartesian metres (a chord of <= 1 km differs from the arc by < 1 mm)."""
    la, lo = np.radians(lat), np.radians(lon)
    c = np.cos(la)
    return EARTH_RADIUS_M * np.column_stack((c * np.cos(lo), c * np.sin(lo), np.sin(la)))


def generate_walking_links(
    lat: np.ndarray, lon: np.ndarray, candidates: np.ndarray, radius_m: float, speed_m_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed walking links between every pair of ``candidates`` within ``radius_m``.

    Parameters
    ----------
    lat, lon : (S,) float64 degrees of all stops
    candidates : (C,) int stop indices that may be linked (stops served by a pattern)
    radius_m : straight-line radius in metres
    speed_m_s : walking speed, m/s

    Returns
    -------
    from, to : (E,) int32 stop indices (both directions)
    seconds : (E,) int32 ceil(distance / speed)
    metres : (E,) float32
    """
    if len(candidates) < 2 or radius_m <= 0:
        e = np.zeros(0, dtype=np.int32)
        return e, e, e.copy(), np.zeros(0, dtype=np.float32)
    from scipy.spatial import cKDTree

    pts = _xyz(lat[candidates], lon[candidates])
    pairs = cKDTree(pts).query_pairs(r=radius_m, output_type="ndarray")
    a, b = candidates[pairs[:, 0]], candidates[pairs[:, 1]]
    m = haversine_m(lat[a], lon[a], lat[b], lon[b])
    s = np.ceil(m / speed_m_s).astype(np.int32)
    fr = np.concatenate([a, b]).astype(np.int32)
    to = np.concatenate([b, a]).astype(np.int32)
    return fr, to, np.concatenate([s, s]), np.concatenate([m, m]).astype(np.float32)


def read_footpaths_file(path: Path, stop_index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``from_stop_id,to_stop_id,walk_seconds`` (namespaced ids) into index arrays.

    Rows naming unknown stops are dropped (a footpaths file often covers more
    stops than the imported feeds); malformed files raise :class:`FootpathsFileError`.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FootpathsFileError(f"cannot read footpaths file {path}: {exc}", details={"path": str(path)}) from exc
    df.columns = [c.strip() for c in df.columns]
    need = {"from_stop_id", "to_stop_id", "walk_seconds"}
    if not need <= set(df.columns):
        raise FootpathsFileError(
            f"footpaths file {path} needs columns from_stop_id,to_stop_id,walk_seconds; has {','.join(df.columns)}",
            details={"path": str(path)},
        )
    secs = pd.to_numeric(df["walk_seconds"].str.strip(), errors="coerce")
    if secs.isna().any() or (secs < 0).any():
        raise FootpathsFileError(f"footpaths file {path}: walk_seconds must be non-negative numbers",
                                 details={"path": str(path)})
    idx = pd.Index(list(stop_index.keys()))
    pos = np.asarray(list(stop_index.values()), dtype=np.int64)
    fi = idx.get_indexer(df["from_stop_id"].str.strip())
    ti = idx.get_indexer(df["to_stop_id"].str.strip())
    ok = (fi >= 0) & (ti >= 0)
    return pos[fi[ok]].astype(np.int32), pos[ti[ok]].astype(np.int32), np.ceil(secs.to_numpy()[ok]).astype(np.int32)


def build_csr(
    n_stops: int, fr: np.ndarray, to: np.ndarray, secs: np.ndarray, metres: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort edges by (from, seconds) and return ``offsets (S+1,), to, seconds, metres``."""
    order = np.lexsort((secs, fr))
    fr, to, secs, metres = fr[order], to[order], secs[order], metres[order]
    offsets = np.zeros(n_stops + 1, dtype=np.int32)
    np.cumsum(np.bincount(fr, minlength=n_stops), out=offsets[1:])
    return offsets, to.astype(np.int32), secs.astype(np.int32), metres.astype(np.float32)
