"""Compile validated GTFS feeds into a :class:`~routing.timetable.Timetable`.

Everything is vectorised (numpy / pandas): no Python loop runs per stop time.
Each feed is compiled on its own into local arrays (so only one feed's raw
tables are in memory at a time), then the feeds are concatenated with index
offsets; footpaths and service bitsets are built over the merged network.

Patterns: a trip's key is (route, length, two independent 64-bit polynomial
hashes of its (stop, pickup, drop-off) sequence); ``np.unique`` over the keys
groups the trips, and every trip is then compared element-wise with its
pattern's first trip, so a hash collision can never merge different sequences.
Trips are sorted by first departure; where a later trip would arrive or depart
earlier than the one before it at some stop (overtaking), the pattern is split
greedily into FIFO sub-patterns (a Python loop, but only over the trips of the
few patterns that overtake).

Distances along patterns follow the first trip's shape (stops snapped
monotonically to shape vertices), falling back to straight lines.

Measured on this machine (2 cores, shared): NYC subway + six bus feeds (8.0 M
stop times) 15-23 s and ~760-870 MB peak RSS; all nine NYC feeds (8.65 M)
~20 s, ~880 MB; subway alone ~1.5 s, ~240 MB.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from routing.errors import FeedError
from routing.feeds import FeedSource, ParsedFeed, haversine_m, parse_feed
from routing.footpaths import build_csr, generate_walking_links, read_footpaths_file
from routing.timetable import TIMETABLE_VERSION, CompileOptions, Timetable

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _pow_table(n: int, m: np.uint64) -> np.ndarray:
    out = np.ones(max(n, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, n):  # n = longest trip (a few hundred): not per stop time
            out[i] = out[i - 1] * m
    return out


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), vectorised."""
    lens = lens.astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    csum = np.cumsum(lens)
    rep = np.repeat(starts.astype(np.int64) - (csum - lens), lens)
    return rep + np.arange(total, dtype=np.int64)


@dataclass
class _FeedPart:
    """One feed compiled with local indices."""

    pf: ParsedFeed
    inst_trip: np.ndarray  # (T',) original trip index per instance (final order)
    inst_freq: np.ndarray  # (T',) int8
    inst_pattern: np.ndarray  # (T',) local pattern
    pattern_route: np.ndarray
    pattern_n_trips: np.ndarray
    pattern_stop_offsets: np.ndarray
    pattern_stops: np.ndarray
    pattern_pickup: np.ndarray
    pattern_dropoff: np.ndarray
    pattern_stop_sequence: np.ndarray
    pattern_time_offsets: np.ndarray
    pattern_arr: np.ndarray
    pattern_dep: np.ndarray
    trip_start_s: np.ndarray
    #: combined (in-seat) trips: CSR over instances (T'+1,), local part instances, start positions
    link_offsets: np.ndarray | None = None
    link_parts: np.ndarray | None = None
    link_first_pos: np.ndarray | None = None


def _compile_feed(pf: ParsedFeed, links: _Links | None = None) -> _FeedPart:
    offsets = pf.trip_row_offsets
    n_rows = np.diff(offsets)
    n_trips = len(n_rows)
    # ---- instances: scheduled trips + frequency expansion -----------------------------
    fq = pf.frequencies
    is_template = np.zeros(n_trips, dtype=bool)
    f_trip = fq["trip"].to_numpy(np.int64) if len(fq) else np.zeros(0, np.int64)
    if len(fq):
        is_template[f_trip] = True
    sched = np.flatnonzero((n_rows >= 2) & ~is_template)
    inst_trip = [sched]
    inst_shift = [np.zeros(len(sched), dtype=np.int64)]
    inst_freq = [np.zeros(len(sched), dtype=np.int8)]
    if len(fq):
        start = fq["start_s"].to_numpy(np.int64)
        end = fq["end_s"].to_numpy(np.int64)
        head = fq["headway_s"].to_numpy(np.int64)
        keep = n_rows[f_trip] >= 2
        f_trip, start, end, head = f_trip[keep], start[keep], end[keep], head[keep]
        k = np.maximum((end - start + head - 1) // head, 0)
        rep = np.repeat(np.arange(len(k)), k)
        kk = _ranges(np.zeros(len(k), dtype=np.int64), k)
        first_dep = pf.st_dep[offsets[f_trip]].astype(np.int64)
        inst_trip.append(f_trip[rep])
        inst_shift.append(start[rep] + kk * head[rep] - first_dep[rep])
        exact = fq["exact_times"].to_numpy(np.int64)[keep]
        inst_freq.append(np.where(exact[rep] == 1, 1, 2).astype(np.int8))
    inst_trip = np.concatenate(inst_trip)
    inst_shift = np.concatenate(inst_shift)
    inst_freq = np.concatenate(inst_freq)
    n_inst = len(inst_trip)
    lens = n_rows[inst_trip]
    rows = _ranges(offsets[inst_trip], lens)
    inst_of_row = np.repeat(np.arange(n_inst), lens)
    row_start = np.zeros(n_inst + 1, dtype=np.int64)
    np.cumsum(lens, out=row_start[1:])
    pos = np.arange(len(rows), dtype=np.int64) - row_start[inst_of_row]
    # ---- pattern keys -------------------------------------------------------------
    v = (pf.st_stop[rows].astype(np.uint64) << np.uint64(4)) | (
        pf.st_pickup[rows].astype(np.uint64) << np.uint64(2)) | pf.st_dropoff[rows].astype(np.uint64)
    maxlen = int(lens.max()) if n_inst else 1
    with np.errstate(over="ignore"):
        h1 = np.add.reduceat((v + np.uint64(1)) * _pow_table(maxlen, _M1)[pos], row_start[:-1]) if n_inst else v
        h2 = np.add.reduceat((v ^ np.uint64(0x5555)) * _pow_table(maxlen, _M2)[pos], row_start[:-1]) if n_inst else v
    route = pf.trips["route"].to_numpy(np.int64)[inst_trip]
    # a trip named by a transfers.txt rule gets a pattern of its own (with its frequency copies): the
    # search gives such a rule to the pattern, and FIFO within a pattern must still hold
    named = np.zeros(n_trips + 1, dtype=bool)
    tr = _keyed_rules(pf)
    tr = tr[tr.transfer_type <= 3]
    if len(tr):
        for c in ("from_trip", "to_trip"):
            t = tr[c].to_numpy(np.int64)
            named[t[t >= 0]] = True
        if links is not None and len(links.parts):
            # a combined (in-seat) trip is judged part by part: one with a part whose trip or route a rule names
            # gets a pattern of its own too, so every position of its pattern has one part's identity
            routes = np.concatenate([tr.from_route.to_numpy(np.int64), tr.to_route.to_numpy(np.int64)])
            troute = pf.trips["route"].to_numpy(np.int64)
            hit = named[links.parts] | np.isin(troute[links.parts], routes[routes >= 0])
            owner = np.repeat(np.arange(len(links.offsets) - 1), np.diff(links.offsets))
            named[links.n_real + np.unique(owner[hit])] = True
    own = np.where(named[inst_trip], inst_trip, -1).astype(np.int64)
    keys = np.column_stack([route, lens.astype(np.int64), h1.view(np.int64), h2.view(np.int64), own])
    if n_inst:
        _, pat = np.unique(keys, axis=0, return_inverse=True)
        pat = pat.ravel().astype(np.int64)
    else:
        pat = np.zeros(0, dtype=np.int64)
    # verify against each pattern's first trip (guards against hash collisions)
    if n_inst:
        first_inst = np.full(int(pat.max()) + 1, n_inst, dtype=np.int64)
        np.minimum.at(first_inst, pat, np.arange(n_inst))
        rep_rows = row_start[first_inst[pat[inst_of_row]]] + pos
        if not np.array_equal(v, v[rep_rows]):
            raise RuntimeError("pattern hash collision")  # pragma: no cover - 2^-128
    dep0 = pf.st_dep[offsets[inst_trip]].astype(np.int64) + inst_shift
    arr_last = pf.st_arr[offsets[inst_trip] + lens - 1].astype(np.int64) + inst_shift
    # ---- sort by (pattern, departure, arrival), lay out, split overtaking patterns -----
    lay = _layout(pf, offsets, inst_trip, inst_shift, lens, pat, dep0, arr_last)
    split = _split_overtaking(lay)
    if split is not None:  # rare: a second layout pass only for feeds whose trips overtake
        pat = np.empty(n_inst, dtype=np.int64)
        pat[lay["order"]] = split
        lay = _layout(pf, offsets, inst_trip, inst_shift, lens, pat, dep0, arr_last)
    order = lay["order"]
    n_pat = len(lay["p_ntrips"])
    p_first = lay["p_trip_off"][:-1]
    rows, p_rows = lay["rows"], lay["p_rows"]
    inst_trip_s = inst_trip[order]
    return _FeedPart(
        pf=pf,
        inst_trip=inst_trip_s,
        inst_freq=inst_freq[order],
        inst_pattern=lay["pat"],
        pattern_route=pf.trips["route"].to_numpy(np.int64)[inst_trip_s[p_first]] if n_pat else np.zeros(0, np.int64),
        pattern_n_trips=lay["p_ntrips"],
        pattern_stop_offsets=lay["p_stop_off"],
        pattern_stops=pf.st_stop[rows[p_rows]],
        pattern_pickup=pf.st_pickup[rows[p_rows]],
        pattern_dropoff=pf.st_dropoff[rows[p_rows]],
        pattern_stop_sequence=pf.st_seq[rows[p_rows]],
        pattern_time_offsets=lay["p_time_off"],
        pattern_arr=lay["arr"],
        pattern_dep=lay["dep"],
        trip_start_s=dep0[order].astype(np.int32),
    )


def _layout(pf, offsets, inst_trip, inst_shift, lens, pat, dep0, arr_last) -> dict:
    """Sort trip instances by (pattern, first departure, last arrival) and scatter their
    times into the stop-major pattern blocks (``dest = time_off[p] + pos * n_p + column``)."""
    n_inst = len(inst_trip)
    order = np.lexsort((arr_last, dep0, pat))
    pat_s, lens_s, shift_s = pat[order], lens[order], inst_shift[order]
    rows = _ranges(offsets[inst_trip[order]], lens_s)
    inst_of_row = np.repeat(np.arange(n_inst), lens_s)
    row_start = np.zeros(n_inst + 1, dtype=np.int64)
    np.cumsum(lens_s, out=row_start[1:])
    pos = np.arange(len(rows), dtype=np.int64) - row_start[inst_of_row]
    n_pat = int(pat_s.max()) + 1 if n_inst else 0
    p_ntrips = np.bincount(pat_s, minlength=n_pat).astype(np.int64)
    p_trip_off = np.zeros(n_pat + 1, dtype=np.int64)
    np.cumsum(p_ntrips, out=p_trip_off[1:])
    p_len = lens_s[p_trip_off[:-1]] if n_pat else np.zeros(0, np.int64)
    p_stop_off = np.zeros(n_pat + 1, dtype=np.int64)
    np.cumsum(p_len, out=p_stop_off[1:])
    p_rows = _ranges(row_start[p_trip_off[:-1]], p_len)
    p_time_off = np.zeros(n_pat + 1, dtype=np.int64)
    np.cumsum(p_len * p_ntrips, out=p_time_off[1:])
    ip = pat_s[inst_of_row]
    col = inst_of_row - p_trip_off[ip]
    dest = p_time_off[ip] + pos * p_ntrips[ip] + col
    shift_row = shift_s[inst_of_row]
    arr = np.empty(len(rows), dtype=np.int32)
    dep = np.empty(len(rows), dtype=np.int32)
    arr[dest] = pf.st_arr[rows] + shift_row
    dep[dest] = pf.st_dep[rows] + shift_row
    first_col = np.zeros(len(rows), dtype=bool)
    first_col[dest[col == 0]] = True
    return {"order": order, "pat": pat_s, "rows": rows, "p_rows": p_rows, "p_ntrips": p_ntrips,
            "p_trip_off": p_trip_off, "p_stop_off": p_stop_off, "p_time_off": p_time_off,
            "arr": arr, "dep": dep, "first_col": first_col}


def _split_overtaking(lay: dict) -> np.ndarray | None:
    """Pattern ids (in layout order) that make every pattern FIFO, or None if all already are.

    In the stop-major blocks cell ``i - 1`` is the previous trip at the same stop
    (unless ``i`` is in column 0), so overtaking is one vectorised comparison.
    Offending patterns are split greedily into "lanes" (a trip joins the first
    lane whose last trip it never precedes), looping only over their trips.
    """
    arr, dep, first_col = lay["arr"], lay["dep"], lay["first_col"]
    if len(arr) < 2:
        return None
    bad = np.zeros(len(arr), dtype=bool)
    bad[1:] = ~first_col[1:] & ((arr[1:] < arr[:-1]) | (dep[1:] < dep[:-1]))
    if not bad.any():
        return None
    p_time_off = lay["p_time_off"]
    bad_pats = np.unique(np.searchsorted(p_time_off, np.flatnonzero(bad), side="right") - 1)
    p_trip_off, p_ntrips = lay["p_trip_off"], lay["p_ntrips"]
    sub = np.zeros(len(lay["pat"]), dtype=np.int64)
    for p in bad_pats.tolist():  # only patterns whose trips overtake; typically a handful
        n = int(p_ntrips[p])
        a = arr[p_time_off[p]:p_time_off[p + 1]].reshape(-1, n)
        d = dep[p_time_off[p]:p_time_off[p + 1]].reshape(-1, n)
        lanes: list[int] = []  # last column of each lane
        for c in range(n):
            for li, last in enumerate(lanes):
                if (a[:, c] >= a[:, last]).all() and (d[:, c] >= d[:, last]).all():
                    lanes[li] = c
                    sub[p_trip_off[p] + c] = li
                    break
            else:
                lanes.append(c)
                sub[p_trip_off[p] + c] = len(lanes) - 1
    _, inv = np.unique(lay["pat"] * 1_000_000 + sub, return_inverse=True)
    return inv.ravel().astype(np.int64)


#: at most this many combined (in-seat) trips per feed; the import report says when a feed has more
MAX_LINKED_TRIPS = 20_000
#: a combined trip has at most this many parts (a rider stays aboard across at most this many - 1 links):
#: a chain of n linked trips (a vehicle's whole day) would otherwise copy ~n^2/2 trips' stop times
MAX_LINKED_PARTS = 8


@dataclass
class _Links:
    """Combined trips appended to a feed by :func:`_add_linked_trips` (original trip indices)."""

    n_real: int  # trips of the feed before the combined ones; combined trip k has index n_real + k
    offsets: np.ndarray  # (C+1,) CSR into parts / first_pos
    parts: np.ndarray  # original trip index of each part, in riding order
    first_pos: np.ndarray  # position in the combined trip where the part's first stop is


def _linked_paths(succ: dict[int, list[int]], days: np.ndarray, cap: int,
                  max_parts: int | None = None) -> tuple[list, list, bool, bool]:
    """Paths of type-4 links (``succ``: trip -> linked trips) to compile, with the days each runs.

    From every trip with links, the tree of link paths (a trip never twice on a
    path, so cycles end; at most ``max_parts`` trips). A path of two or more
    trips is kept for the days all its trips run and no longer path through it
    runs (so a maximal path covers its prefixes on its days, and a prefix gets
    the days its extensions miss). ``days[t]``: (D,) bool of trip ``t``.
    Returns (paths, day rows, capped at ``cap`` paths, some path cut at ``max_parts``).
    """
    max_parts = MAX_LINKED_PARTS if max_parts is None else max_parts
    paths, rows = [], []
    cut = False
    budget = cap * 8  # tree nodes visited (branching links could otherwise take exponential time)
    for start in sorted(succ):
        stack = [((start,), days[start])]
        while stack:
            if len(paths) >= cap or budget <= 0:
                return paths, rows, True, cut
            budget -= 1
            path, row = stack.pop()
            kids = [(c, row & days[c]) for c in succ.get(path[-1], ()) if c not in path]
            kids = [(c, r) for c, r in kids if r.any()]
            if kids and len(path) >= max_parts:
                kids, cut = [], True
            if len(path) >= 2:
                own = row.copy()
                for _c, r in kids:
                    own &= ~r
                if own.any():
                    paths.append(path)
                    rows.append(own)
            for c, r in reversed(kids):
                stack.append((path + (c,), r))
    return paths, rows, False, cut


def _add_linked_trips(pf: ParsedFeed, report, cap: int | None = None) -> _Links | None:
    """Append one *combined trip* per path of transfers.txt type-4 links (in-seat transfers) to ``pf``.

    A rider on ``from_trip`` stays aboard onto ``to_trip`` (same service day):
    the combined trip's stop times are its parts' one after the other, so the
    unchanged kernels ride the whole path as one ride. Where a part ends at
    the stop the next part starts from, the two are one position (arrival and
    drop-off of the earlier part, departure and pickup of the later); otherwise
    the earlier part's last stop allows no pickup and the later part's first
    no drop-off (nobody boards or leaves between the two). A combined trip runs
    on the days all its parts run (see :func:`_linked_paths`); it has no shape,
    the route, headsign of its first part and a trip id no real trip has
    (never shown: itineraries show the parts). Links naming a frequency-based
    trip or a trip without two stop times, and links where ``to_trip`` leaves
    before ``from_trip`` arrives, are dropped with a warning.
    """
    cap = MAX_LINKED_TRIPS if cap is None else cap
    tr = pf.transfers
    blocks = pf.source.in_seat_from_blocks and "block_id" in pf.trips
    if not len(tr) and not blocks:
        return None
    sel = (tr.transfer_type.to_numpy() == 4) & (tr.from_trip.to_numpy() >= 0) & (tr.to_trip.to_numpy() >= 0)
    if not sel.any() and not blocks:
        return None
    off = pf.trip_row_offsets
    n_rows = np.diff(off)
    T = len(n_rows)
    templ = np.zeros(T, dtype=bool)
    if len(pf.frequencies):
        templ[pf.frequencies["trip"].to_numpy(np.int64)] = True
    fts, tts = tr.from_trip.to_numpy(np.int64)[sel], tr.to_trip.to_numpy(np.int64)[sel]
    succ: dict[int, list[int]] = {}
    dropped = {"a trip without two stop times": 0, "a frequency-based trip": 0,
               "to_trip leaving before from_trip arrives": 0, "a trip linked to itself": 0}
    for a, b in zip(fts.tolist(), tts.tolist()):
        if a == b:
            dropped["a trip linked to itself"] += 1
            continue
        if n_rows[a] < 2 or n_rows[b] < 2:
            dropped["a trip without two stop times"] += 1
            continue
        if templ[a] or templ[b]:
            dropped["a frequency-based trip"] += 1
            continue
        la, fb = int(off[a + 1]) - 1, int(off[b])
        merged = pf.st_stop[la] == pf.st_stop[fb]
        if (pf.st_dep[fb] < pf.st_arr[la]) if merged else (pf.st_arr[fb] < pf.st_dep[la]):
            dropped["to_trip leaving before from_trip arrives"] += 1
            continue
        if b not in succ.setdefault(a, []):
            succ[a].append(b)
    for why, n in dropped.items():
        if n:
            report.warnings.append(f"transfers.txt: {n} in-seat link(s) (type 4) with {why} ignored")
    if blocks:
        inferred = _block_links(pf, templ, n_rows)
        for a, b in inferred:
            succ.setdefault(a, []).append(b)
        report.counts["in_seat_links_from_blocks"] = len(inferred)
    if not succ:
        return None
    svc = pf.trips.service.to_numpy(np.int64)
    days = pf.service_days.astype(bool)
    paths, rows, capped, cut = _linked_paths(succ, _TripDays(days, svc), cap)
    if cut:
        report.warnings.append(f"transfers.txt: in-seat links form chains of more than {MAX_LINKED_PARTS} trips; "
                               f"a rider stays aboard across at most {MAX_LINKED_PARTS - 1} links (combined trips are "
                               "cut there)")
    if capped:
        report.warnings.append(f"transfers.txt: in-seat links form more than {cap} paths; only the first {cap} "
                               "are compiled into combined trips (other in-seat transfers are not found)")
    if not paths:
        return None
    # ---- stop times of the combined trips ----------------------------------------------
    cols = {k: [] for k in ("stop", "seq", "arr", "dep", "pickup", "dropoff")}
    src = {"stop": pf.st_stop, "seq": pf.st_seq, "arr": pf.st_arr, "dep": pf.st_dep, "pickup": pf.st_pickup,
           "dropoff": pf.st_dropoff}
    lens, part_list, first_pos, part_len = [], [], [], [0]
    for path in paths:
        n = 0
        for i, t in enumerate(path):
            seg = {k: np.array(v[off[t]:off[t + 1]]) for k, v in src.items()}
            if i == 0:
                first_pos.append(0)
            elif cols["stop"][-1][-1] == seg["stop"][0]:  # one position: arrive as before, leave as after
                prev = {k: cols[k][-1] for k in cols}
                prev["dep"][-1] = seg["dep"][0]
                prev["pickup"][-1] = seg["pickup"][0]
                seg = {k: v[1:] for k, v in seg.items()}
                first_pos.append(n - 1)
            else:  # the vehicle moves on empty between the two: no boarding before, no alighting after
                cols["pickup"][-1][-1] = 1
                seg["dropoff"][0] = 1
                first_pos.append(n)
            for k in cols:
                cols[k].append(seg[k])
            n += len(seg["stop"])
            part_list.append(t)
        lens.append(n)
        part_len.append(part_len[-1] + len(path))
    C = len(paths)
    new_off = off[-1] + np.concatenate([[0], np.cumsum(lens)])
    pf.trip_row_offsets = np.concatenate([off, new_off[1:]]).astype(off.dtype)
    for k, name in (("stop", "st_stop"), ("seq", "st_seq"), ("arr", "st_arr"), ("dep", "st_dep"),
                    ("pickup", "st_pickup"), ("dropoff", "st_dropoff")):
        old = getattr(pf, name)
        setattr(pf, name, np.concatenate([old] + cols[k]).astype(old.dtype))
    # ---- services: the days every part runs (compile deduplicates rows) -----------------
    uniq, inv = np.unique(np.asarray(rows, dtype=np.uint8), axis=0, return_inverse=True)
    V = pf.service_days.shape[0]
    pf.service_days = np.concatenate([pf.service_days, uniq.astype(pf.service_days.dtype)], axis=0)
    pf.service_ids = np.concatenate([np.asarray(pf.service_ids, dtype=object),
                                     np.asarray([f"~in-seat~{i}" for i in range(len(uniq))], dtype=object)])
    # ---- trips ----------------------------------------------------------------------------
    trips = pf.trips
    first = np.asarray([p[0] for p in paths], dtype=np.int64)
    real_ids = set(trips.trip_id.tolist())
    ids = []
    for k, p in enumerate(paths):
        tid = f"{trips.trip_id.iat[p[0]]}~in-seat~{k}"
        while tid in real_ids:
            tid = "~" + tid
        ids.append(tid)
    new = trips.iloc[first].copy().reset_index(drop=True)  # the first part's row: route, headsign, direction_id
    new["trip_id"] = np.asarray(ids, dtype=object)
    new["service"] = (V + inv.ravel()).astype(trips.service.dtype)
    if "shape" in new:
        new["shape"] = np.full(C, -1, dtype=trips["shape"].dtype)
    wc = trips.wheelchair_accessible.to_numpy()
    new["wheelchair_accessible"] = np.asarray(
        [2 if any(wc[t] == 2 for t in p) else 1 if all(wc[t] == 1 for t in p) else 0 for p in paths],
        dtype=trips.wheelchair_accessible.dtype)
    pf.trips = pd.concat([trips, new], ignore_index=True).astype(trips.dtypes.to_dict())
    report.counts["in_seat_links"] = sum(len(v) for v in succ.values())  # compiled into combined trips
    report.counts["combined_trips"] = C
    return _Links(n_real=T, offsets=np.asarray(part_len, dtype=np.int64), parts=np.asarray(part_list, np.int64),
                  first_pos=np.asarray(first_pos, dtype=np.int64))


def _block_links(pf: ParsedFeed, templ: np.ndarray, n_rows: np.ndarray) -> list[tuple[int, int]]:
    """In-seat links inferred from trips.txt ``block_id`` (opt-in: ``FeedSource.in_seat_from_blocks``).

    The trips of one non-empty ``block_id`` and one ``service_id`` are ordered by
    first departure (then trips.txt order); frequency-based trips and trips
    without two stop times take no part. Each trip is linked to the next when
    the next leaves no earlier than it arrives (first departure >= last
    arrival) from its last stop, or from a stop of the same parent station.
    transfers.txt wins: no link for a pair with a type-5 row, nor from a trip
    that is ``from_trip`` of any type-4 row. Returns ``(from, to)`` trip pairs.
    """
    off = pf.trip_row_offsets
    block = pf.trips["block_id"].to_numpy(dtype=object)
    t = np.flatnonzero((block != "") & ~templ & (n_rows >= 2))
    if len(t) < 2:
        return []
    first_dep = pf.st_dep[off[t]].astype(np.int64)
    bcode, _ = pd.factorize(block[t])
    svc = pf.trips.service.to_numpy(np.int64)[t]
    order = np.lexsort((t, first_dep, svc, bcode))
    t, first_dep, bcode, svc = t[order], first_dep[order], bcode[order], svc[order]
    a, b = t[:-1], t[1:]
    la, fb = off[a + 1] - 1, off[b]
    stop_a, stop_b = pf.st_stop[la].astype(np.int64), pf.st_stop[fb].astype(np.int64)
    parent = pf.stops.parent.to_numpy(np.int64)
    same_place = (stop_a == stop_b) | ((parent[stop_a] >= 0) & (parent[stop_a] == parent[stop_b]))
    ok = ((bcode[:-1] == bcode[1:]) & (svc[:-1] == svc[1:]) & same_place
          & (first_dep[1:] >= pf.st_arr[la].astype(np.int64)))
    pairs = list(zip(a[ok].tolist(), b[ok].tolist()))
    tr = pf.transfers
    if len(tr) and pairs:
        ty, ft, tt = (tr[c].to_numpy(np.int64) for c in ("transfer_type", "from_trip", "to_trip"))
        explicit_from = set(ft[(ty == 4) & (ft >= 0) & (tt >= 0)].tolist())
        not_allowed = set(zip(ft[ty == 5].tolist(), tt[ty == 5].tolist()))
        pairs = [(x, y) for x, y in pairs if x not in explicit_from and (x, y) not in not_allowed]
    return pairs


class _TripDays:
    """``days[t]``: (D,) bool service days of trip ``t`` (rows shared by trips of one service)."""

    def __init__(self, days: np.ndarray, svc: np.ndarray) -> None:
        self.days, self.svc = days, svc

    def __getitem__(self, t: int) -> np.ndarray:
        return self.days[self.svc[t]]


def _instance_links(part: _FeedPart, links: _Links | None) -> None:
    """Per compiled trip (instance) of ``part``: its parts as local instance indices (CSR; empty for a
    trip that is not combined) and where each starts in the combined trip."""
    n = len(part.inst_trip)
    if links is None:
        part.link_offsets = np.zeros(n + 1, dtype=np.int64)
        part.link_parts = part.link_first_pos = np.zeros(0, dtype=np.int64)
        return
    sched = part.inst_freq == 0
    inv = np.full(int(part.inst_trip.max(initial=0)) + 1, -1, dtype=np.int64)
    inv[part.inst_trip[sched]] = np.flatnonzero(sched)
    k = part.inst_trip - links.n_real  # combined trip number, < 0 for real trips
    cnt = np.where(k >= 0, np.diff(links.offsets)[np.maximum(k, 0)], 0) if n else np.zeros(0, np.int64)
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(cnt, out=offs[1:])
    comb = np.flatnonzero(k >= 0)
    src = _ranges(links.offsets[k[comb]], cnt[comb])
    parts = inv[links.parts[src]]
    if (parts < 0).any():  # pragma: no cover - parts are scheduled trips with two stop times
        raise RuntimeError("combined trip part without a compiled trip")
    part.link_offsets, part.link_parts, part.link_first_pos = offs, parts, links.first_pos[src]


def _ns(feed_id: str, values) -> np.ndarray:
    """Namespaced fixed-width unicode ids."""
    v = np.asarray(values, dtype=object)
    if len(v) == 0:
        return np.zeros(0, dtype="<U1")
    return np.char.add(f"{feed_id}:", v.astype(str))


def _u(values) -> np.ndarray:
    v = np.asarray(values, dtype=object)
    if len(v) == 0:
        return np.zeros(0, dtype="<U1")
    return v.astype(str)


def compile_timetable(sources: Sequence[FeedSource], options: CompileOptions = CompileOptions()) -> Timetable:
    """Read, validate and compile feeds into one Timetable.

    Raises :class:`~routing.errors.FeedError` (with ``.report``) for the first
    broken feed, and ``RoutingError`` subclasses for bad options.
    """
    t0 = _time.perf_counter()
    sources = list(sources)
    if not sources:
        raise FeedError("no feeds to compile")
    ids = [s.feed_id for s in sources]
    if len(set(ids)) != len(ids):
        raise FeedError(f"feed ids must be unique, got {ids}")
    parts: list[_FeedPart] = []
    reports = []
    for src in sources:
        pf, report = parse_feed(src)
        reports.append(report)
        if pf is None:
            raise FeedError(f"feed {src.feed_id} refused:\n{report.to_text()}", report=report)
        links = _add_linked_trips(pf, report)
        part = _compile_feed(pf, links)
        _instance_links(part, links)
        parts.append(part)
        # raw per-row arrays are not needed any more; free them before the next feed
        pf.st_stop = pf.st_seq = pf.st_arr = pf.st_dep = pf.st_pickup = pf.st_dropoff = np.zeros(0, np.int32)
    t_feeds = _time.perf_counter() - t0
    tt = _merge(parts, options)
    meta = dict(tt.meta)
    meta.update({
        "version": TIMETABLE_VERSION,
        "options": options.as_key(),
        "feeds": [r.to_dict() for r in reports],
        "compile_s": round(_time.perf_counter() - t0, 3),
        "read_s": round(t_feeds, 3),
    })
    object.__setattr__(tt, "meta", meta)
    return tt


def _merge(parts: list[_FeedPart], options: CompileOptions) -> Timetable:
    F = len(parts)
    st_off = np.cumsum([0] + [len(p.pf.stops) for p in parts])
    rt_off = np.cumsum([0] + [len(p.pf.routes) for p in parts])
    pat_off = np.cumsum([0] + [len(p.pattern_n_trips) for p in parts])
    trip_off = np.cumsum([0] + [len(p.inst_trip) for p in parts])
    shp_off = np.cumsum([0] + [len(p.pf.shape_ids) for p in parts])
    S = int(st_off[-1])

    def cat(arrs, dtype):
        return np.concatenate([np.asarray(a) for a in arrs]).astype(dtype) if arrs else np.zeros(0, dtype)

    # ---- stops ------------------------------------------------------------------------
    stops = [p.pf.stops for p in parts]
    stop_ids = np.concatenate([_ns(p.pf.source.feed_id, s.stop_id) for p, s in zip(parts, stops)])
    stop_lat = cat([s.stop_lat for s in stops], np.float64)
    stop_lon = cat([s.stop_lon for s in stops], np.float64)
    stop_parent = cat([np.where(s.parent.to_numpy() >= 0, s.parent.to_numpy() + o, -1) for s, o in zip(stops, st_off)],
                      np.int32)
    stop_lt = cat([s.location_type for s in stops], np.int8)
    # ---- routes -----------------------------------------------------------------------
    routes = [p.pf.routes for p in parts]
    # ---- services: align every feed on one day axis, dedup rows --------------------------
    first = min(p.pf.first_ordinal for p in parts)
    last = max(p.pf.first_ordinal + p.pf.service_days.shape[1] - 1 for p in parts)
    D = last - first + 1
    blocks, svc_off = [], [0]
    for p in parts:
        b = np.zeros((p.pf.service_days.shape[0], D), dtype=np.uint8)
        c0 = p.pf.first_ordinal - first
        b[:, c0:c0 + p.pf.service_days.shape[1]] = p.pf.service_days
        blocks.append(b)
        svc_off.append(svc_off[-1] + b.shape[0])
    allsvc = np.concatenate(blocks, axis=0) if blocks else np.zeros((0, D), np.uint8)
    if len(allsvc):
        uniq_days, svc_inv = np.unique(allsvc, axis=0, return_inverse=True)
        svc_inv = svc_inv.ravel()
    else:
        uniq_days, svc_inv = allsvc, np.zeros(0, np.int64)
    # ---- trips ------------------------------------------------------------------------
    trip_ids, trip_route, trip_service, trip_head, trip_wc, trip_shape, trip_dir = [], [], [], [], [], [], []
    for i, p in enumerate(parts):
        tr = p.pf.trips
        it = p.inst_trip
        trip_ids.append(_ns(p.pf.source.feed_id, tr.trip_id.to_numpy()[it]))
        trip_route.append(tr.route.to_numpy()[it] + rt_off[i])
        trip_service.append(svc_inv[tr.service.to_numpy()[it] + svc_off[i]])
        trip_head.append(tr.trip_headsign.to_numpy()[it])
        trip_wc.append(tr.wheelchair_accessible.to_numpy()[it])
        trip_dir.append(tr.direction_id.to_numpy()[it])
        sh = tr["shape"].to_numpy()[it]
        trip_shape.append(np.where(sh >= 0, sh + shp_off[i], -1))
    trip_ids_a = np.concatenate(trip_ids) if trip_ids else np.zeros(0, "<U1")
    trip_pattern = cat([p.inst_pattern + o for p, o in zip(parts, pat_off)], np.int32)
    # ---- combined (in-seat) trips: their parts -----------------------------------------------
    link_cnt = np.concatenate([np.diff(p.link_offsets) for p in parts]) if parts else np.zeros(0, np.int64)
    trip_link_offsets = np.zeros(len(link_cnt) + 1, dtype=np.int32)
    np.cumsum(link_cnt, out=trip_link_offsets[1:])
    trip_link_parts = cat([p.link_parts + o for p, o in zip(parts, trip_off)], np.int32)
    trip_link_first_pos = cat([p.link_first_pos for p in parts], np.int32)
    # ---- patterns ----------------------------------------------------------------------
    pattern_route = cat([p.pattern_route + o for p, o in zip(parts, rt_off)], np.int32)
    pattern_n_trips = cat([p.pattern_n_trips for p in parts], np.int32)
    pattern_stops = cat([p.pattern_stops + o for p, o in zip(parts, st_off)], np.int32)
    P = len(pattern_n_trips)
    pattern_trip_offsets = np.zeros(P + 1, dtype=np.int32)
    np.cumsum(pattern_n_trips, out=pattern_trip_offsets[1:])
    plen = np.concatenate([np.diff(p.pattern_stop_offsets) for p in parts]) if parts else np.zeros(0, np.int64)
    pattern_stop_offsets = np.zeros(P + 1, dtype=np.int32)
    np.cumsum(plen, out=pattern_stop_offsets[1:])
    pattern_time_offsets = np.zeros(P + 1, dtype=np.int64)
    np.cumsum(plen.astype(np.int64) * pattern_n_trips, out=pattern_time_offsets[1:])
    pattern_arr = cat([p.pattern_arr for p in parts], np.int32)
    pattern_dep = cat([p.pattern_dep for p in parts], np.int32)
    # cumulative straight-line metres along each pattern
    seg = np.zeros(len(pattern_stops))
    if len(pattern_stops) > 1:
        seg[1:] = haversine_m(stop_lat[pattern_stops[:-1]], stop_lon[pattern_stops[:-1]],
                              stop_lat[pattern_stops[1:]], stop_lon[pattern_stops[1:]])
    seg[pattern_stop_offsets[:-1][plen > 0]] = 0.0
    cum = np.cumsum(seg)
    pattern_of_entry = np.repeat(np.arange(P), plen)
    pattern_stop_dist_m = (cum - cum[pattern_stop_offsets[:-1]][pattern_of_entry]).astype(np.float32) if P else \
        np.zeros(0, np.float32)
    # ---- stop -> patterns ------------------------------------------------------------
    pos_in_pattern = np.arange(len(pattern_stops)) - pattern_stop_offsets[:-1][pattern_of_entry] if P else \
        np.zeros(0, np.int64)
    o = np.argsort(pattern_stops, kind="stable")
    stop_pattern_offsets = np.zeros(S + 1, dtype=np.int32)
    np.cumsum(np.bincount(pattern_stops, minlength=S), out=stop_pattern_offsets[1:])
    stop_patterns = pattern_of_entry[o].astype(np.int32)
    stop_pattern_pos = pos_in_pattern[o].astype(np.int32)
    # ---- transfers.txt rules ----------------------------------------------------------
    min_change = np.zeros(S, dtype=np.int32)
    no_transfer = np.zeros(S, dtype=bool)
    rule_fr, rule_to, rule_type, rule_min = [], [], [], []
    tt_rules = []
    for i, p in enumerate(parts):
        r = p.pf.transfers
        if not len(r):
            continue
        for c in ("from_route", "to_route"):  # transfers frames of feeds parsed before routes were read
            if c not in r:
                r = r.assign(**{c: -1})
        keyed = (r.from_trip >= 0) | (r.to_trip >= 0) | (r.from_route >= 0) | (r.to_route >= 0)
        stop_rules = r[~keyed & (r.transfer_type <= 3)]
        fr, to, ty, mt = _expand_station_rules(stop_rules, p.pf.stops)
        rule_fr.append(fr + st_off[i]); rule_to.append(to + st_off[i]); rule_type.append(ty); rule_min.append(mt)
        kept = _keyed_rules(p.pf)
        if len(kept):
            tt_rules.append(_trip_rules(kept, p, st_off[i], trip_off[i], rt_off[i]))
    if rule_fr:
        rfr, rto, rty, rmt = (np.concatenate(x) for x in (rule_fr, rule_to, rule_type, rule_min))
    else:
        rfr = rto = rty = rmt = np.zeros(0, dtype=np.int64)
    same = rfr == rto
    sel = same & (rty == 2)
    min_change[rfr[sel]] = np.maximum(min_change[rfr[sel]], rmt[sel].astype(np.int32))
    no_transfer[rfr[same & (rty == 3)]] = True
    # ---- footpaths -------------------------------------------------------------------
    served = np.flatnonzero(np.bincount(pattern_stops, minlength=S) > 0)
    if options.footpaths_file is not None:
        idx = {s: i for i, s in enumerate(stop_ids.tolist())}
        gfr, gto, gs = read_footpaths_file(Path(options.footpaths_file), idx)
        gm = haversine_m(stop_lat[gfr], stop_lon[gfr], stop_lat[gto], stop_lon[gto]).astype(np.float32)
    else:
        gfr, gto, gs, gm = generate_walking_links(stop_lat, stop_lon, served, options.walk_radius_m,
                                                  options.walk_speed_m_s)
    # pathways.txt: shortest walk through the station between served platforms, over straight-line links
    pw = [_pathway_links(p.pf, served, int(o), stop_lat, stop_lon, options.walk_speed_m_s)
          for p, o in zip(parts, st_off) if getattr(p.pf, "pathways", None) is not None]
    pfr, pto, ps, pm = (np.concatenate([x[j] for x in pw]) if pw else np.zeros(0, t)
                        for j, t in enumerate((np.int64, np.int64, np.int32, np.float32)))
    diff = ~same
    dfr, dto, dty, dmt = rfr[diff], rto[diff], rty[diff], rmt[diff]
    dm = haversine_m(stop_lat[dfr], stop_lon[dfr], stop_lat[dto], stop_lon[dto])
    walk = np.ceil(dm / options.walk_speed_m_s)
    ds = np.where(dty == 2, dmt, walk).astype(np.int32)
    # rules (priority 2) override pathways (1), which override generated links (0); type 3 removes the link
    efr = np.concatenate([gfr, pfr, dfr]).astype(np.int64)
    eto = np.concatenate([gto, pto, dto]).astype(np.int64)
    es = np.concatenate([gs, ps, ds]).astype(np.int32)
    em = np.concatenate([gm, pm, dm.astype(np.float32)])
    eprio = np.concatenate([np.zeros(len(gfr), np.int8), np.ones(len(pfr), np.int8), np.full(len(dfr), 2, np.int8)])
    eforbid = np.concatenate([np.zeros(len(gfr) + len(pfr), bool), dty == 3])
    key = efr * S + eto
    order = np.lexsort((eprio, key))
    key, es, em, eforbid = key[order], es[order], em[order], eforbid[order]
    lastk = np.ones(len(key), dtype=bool)
    lastk[:-1] = key[1:] != key[:-1]
    keep = lastk & ~eforbid & ((key // S) != (key % S)) if S else lastk
    efr, eto = (key[keep] // S), (key[keep] % S)
    fp_off, fp_to, fp_s, fp_m = build_csr(S, efr, eto, es[keep], em[keep])
    # ---- trip-to-trip rules -------------------------------------------------------------
    if tt_rules:
        x = pd.concat(tt_rules, ignore_index=True).sort_values(["from_trip", "to_trip"], kind="stable")
    else:
        x = pd.DataFrame({c: np.zeros(0, np.int64) for c in
                          ("from_trip", "to_trip", "from_stop", "to_stop", "from_route", "to_route", "transfer_type",
                           "min_transfer_time")})
    # ---- shapes ----------------------------------------------------------------------
    shape_lat = cat([p.pf.shape_lat for p in parts], np.float64)
    shape_lon = cat([p.pf.shape_lon for p in parts], np.float64)
    shape_len = np.concatenate([np.diff(p.pf.shape_offsets) for p in parts])
    shape_offsets = np.zeros(len(shape_len) + 1, dtype=np.int32)
    np.cumsum(shape_len, out=shape_offsets[1:])
    sseg = np.zeros(len(shape_lat))
    if len(shape_lat) > 1:
        sseg[1:] = haversine_m(shape_lat[:-1], shape_lon[:-1], shape_lat[1:], shape_lon[1:])
    nonempty = shape_len > 0
    sseg[shape_offsets[:-1][nonempty]] = 0.0
    scum = np.cumsum(sseg)
    sh_of = np.repeat(np.arange(len(shape_len)), shape_len)
    shape_dist_m = (scum - scum[shape_offsets[:-1]][sh_of]).astype(np.float32) if len(shape_lat) else \
        np.zeros(0, np.float32)

    trip_shape_a = cat(trip_shape, np.int32)
    if P and len(shape_lat):
        _along_shape(pattern_stop_dist_m, trip_shape_a[pattern_trip_offsets[:-1][pattern_n_trips > 0]],
                     np.flatnonzero(pattern_n_trips > 0), pattern_stop_offsets, pattern_stops, stop_lat, stop_lon,
                     shape_offsets, shape_lat, shape_lon, shape_dist_m)

    tt = Timetable(
        feed_ids=_u([p.pf.source.feed_id for p in parts]),
        feed_operator_ids=_u([p.pf.source.operator_id for p in parts]),
        feed_timezones=_u([p.pf.timezone for p in parts]),
        stop_ids=stop_ids,
        stop_names=_u(np.concatenate([s.stop_name.to_numpy() for s in stops])),
        stop_lat=stop_lat, stop_lon=stop_lon, stop_parent=stop_parent, stop_location_type=stop_lt,
        stop_wheelchair_boarding=cat([s.wheelchair_boarding for s in stops], np.int8),
        stop_feed=np.repeat(np.arange(F), np.diff(st_off)).astype(np.int32),
        stop_timezones=_u(np.concatenate([s.stop_timezone.to_numpy() for s in stops])),
        stop_min_change_s=min_change, stop_no_transfer=no_transfer,
        route_ids=np.concatenate([_ns(p.pf.source.feed_id, r.route_id) for p, r in zip(parts, routes)]),
        route_short_names=_u(np.concatenate([r.route_short_name.to_numpy() for r in routes])),
        route_long_names=_u(np.concatenate([r.route_long_name.to_numpy() for r in routes])),
        route_types=cat([r.route_type for r in routes], np.int32),
        route_modes=cat([r["mode"] for r in routes], np.int8),
        route_feed=np.repeat(np.arange(F), np.diff(rt_off)).astype(np.int32),
        route_agency_names=_u(np.concatenate([r.agency_name.to_numpy() for r in routes])),
        route_agency_ids=_u(np.concatenate([r.agency_id.to_numpy() for r in routes])),
        route_operator_ids=_u(np.concatenate([r.operator_id.to_numpy() for r in routes])),
        trip_ids=trip_ids_a,
        trip_route=cat(trip_route, np.int32),
        trip_service=cat(trip_service, np.int32),
        trip_pattern=trip_pattern,
        trip_headsigns=_u(np.concatenate(trip_head)),
        trip_wheelchair_accessible=cat(trip_wc, np.int8),
        trip_direction=cat(trip_dir, np.int8),
        trip_shape=trip_shape_a,
        trip_frequency=cat([p.inst_freq for p in parts], np.int8),
        trip_start_s=cat([p.trip_start_s for p in parts], np.int32),
        trip_link_offsets=trip_link_offsets, trip_link_parts=trip_link_parts,
        trip_link_first_pos=trip_link_first_pos,
        pattern_route=pattern_route, pattern_n_trips=pattern_n_trips,
        pattern_trip_offsets=pattern_trip_offsets, pattern_stop_offsets=pattern_stop_offsets,
        pattern_stops=pattern_stops,
        pattern_pickup=cat([p.pattern_pickup for p in parts], np.int8),
        pattern_dropoff=cat([p.pattern_dropoff for p in parts], np.int8),
        pattern_stop_sequence=cat([p.pattern_stop_sequence for p in parts], np.int32),
        pattern_stop_dist_m=pattern_stop_dist_m,
        pattern_time_offsets=pattern_time_offsets, pattern_arr=pattern_arr, pattern_dep=pattern_dep,
        stop_pattern_offsets=stop_pattern_offsets, stop_patterns=stop_patterns, stop_pattern_pos=stop_pattern_pos,
        footpath_offsets=fp_off, footpath_to=fp_to, footpath_s=fp_s, footpath_m=fp_m,
        trip_transfer_from_trip=x.from_trip.to_numpy(np.int32),
        trip_transfer_to_trip=x.to_trip.to_numpy(np.int32),
        trip_transfer_from_stop=x.from_stop.to_numpy(np.int32),
        trip_transfer_to_stop=x.to_stop.to_numpy(np.int32),
        trip_transfer_from_route=x.from_route.to_numpy(np.int32),
        trip_transfer_to_route=x.to_route.to_numpy(np.int32),
        trip_transfer_type=x.transfer_type.to_numpy(np.int8),
        trip_transfer_min_s=x.min_transfer_time.to_numpy(np.int32),
        service_days=np.ascontiguousarray(uniq_days, dtype=np.uint8),
        first_day_ordinal=int(first),
        shape_ids=np.concatenate([_ns(p.pf.source.feed_id, p.pf.shape_ids) for p in parts]),
        shape_offsets=shape_offsets, shape_lat=shape_lat, shape_lon=shape_lon, shape_dist_m=shape_dist_m,
        meta={"counts": {
            "feeds": F, "stops": S, "routes": int(rt_off[-1]), "patterns": P, "trips": int(trip_off[-1]),
            "stop_times": int(len(pattern_arr)), "footpaths": int(len(fp_to)), "services": int(len(uniq_days)),
            "days": int(D), "trip_transfers": int(len(x)),
            "combined_trips": int((link_cnt > 0).sum()),
        }},
    )
    freeze(tt)
    return tt


SNAP_LIMIT_M = 150.0


def _along_shape(out, shapes, patterns, stop_off, stops, lat, lon, shape_off, slat, slon, sdist) -> None:
    """Replace straight-line stop distances by distances along the pattern's shape, in place.

    Each stop is snapped to a shape vertex such that the vertices never go
    backwards along the shape and the summed snapping distance is minimal (a
    small dynamic programme over a stops x vertices matrix, vectorised per
    pattern; one Python iteration per pattern and stop, never per stop time).
    Patterns whose stops lie more than ``SNAP_LIMIT_M`` from their shape keep
    the straight-line distances.
    """
    for p, sh in zip(patterns.tolist(), shapes.tolist()):
        if sh < 0:
            continue
        a, b = int(shape_off[sh]), int(shape_off[sh + 1])
        if b - a < 2:
            continue
        ps = stops[stop_off[p]:stop_off[p + 1]]
        coslat = np.cos(np.radians(lat[ps[0]]))
        x = (slon[a:b] - lon[ps][:, None]) * coslat
        y = slat[a:b] - lat[ps][:, None]
        d = np.hypot(x, y) * (np.pi / 180 * 6_371_008.8)  # (L, G) metres
        cost = d[0].copy()
        back = np.empty(d.shape, dtype=np.int64)
        back[0] = np.arange(d.shape[1])
        for k in range(1, len(ps)):
            best = np.minimum.accumulate(cost)
            arg = np.arange(len(cost))
            arg = np.maximum.accumulate(np.where(cost <= best, arg, 0))
            back[k] = arg
            cost = d[k] + best
        j = int(np.argmin(cost))
        snap = np.empty(len(ps), dtype=np.int64)
        for k in range(len(ps) - 1, -1, -1):
            snap[k] = j
            j = int(back[k][j]) if k > 0 else j
        # back[k][j] is the best vertex of stop k-1 at or before j
        if d[np.arange(len(ps)), snap].max() > SNAP_LIMIT_M:
            continue
        along = sdist[a + snap].astype(np.float64)
        out[stop_off[p]:stop_off[p + 1]] = (along - along[0]).astype(np.float32)


def freeze(tt: Timetable) -> None:
    """Make every array of ``tt`` read-only."""
    for name in Timetable.array_fields():
        a = getattr(tt, name)
        if isinstance(a, np.ndarray):
            a.flags.writeable = False


def _pathway_links(pf: ParsedFeed, served: np.ndarray, off: int, lat: np.ndarray, lon: np.ndarray,
                   speed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Footpaths between served platforms of one feed: shortest time over its pathways.txt graph.

    A pathway takes its ``traversal_time``, else ``length / speed``, else the
    straight line between its ends at ``speed``; a boarding area (location_type
    4) is its platform. Returns global ``from, to, seconds, metres`` (metres:
    straight line, so a slower walker's ``metres / speed`` floor still applies).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    pw = pf.pathways
    n = len(pf.stops)
    fr, to = pw.from_stop.to_numpy(np.int64), pw.to_stop.to_numpy(np.int64)
    line = haversine_m(lat[fr + off], lon[fr + off], lat[to + off], lon[to + off]) / speed
    w = np.where(np.isfinite(pw.traversal_s), pw.traversal_s, np.where(np.isfinite(pw.length_m), pw.length_m / speed, line))
    w = np.nan_to_num(np.maximum(w, 0.0)) + 1e-6  # csgraph drops explicit zeros
    bi = pw.bidirectional.to_numpy(bool)
    lt, parent = pf.stops.location_type.to_numpy(), pf.stops.parent.to_numpy()
    ba = np.flatnonzero((lt == 4) & (parent >= 0))
    fr = np.concatenate([fr, to[bi], ba, parent[ba]])
    to = np.concatenate([to, pw.from_stop.to_numpy(np.int64)[bi], parent[ba], ba])
    w = np.concatenate([w, w[bi], np.full(2 * len(ba), 1e-6)])
    order = np.lexsort((w, fr * n + to))
    key = (fr * n + to)[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]  # parallel pathways: the fastest (coo_matrix would sum them)
    g = coo_matrix((w[order][first], (fr[order][first], to[order][first])), shape=(n, n)).tocsr()
    local = served[(served >= off) & (served < off + n)] - off
    src = local[np.isin(local, np.concatenate([fr, to]))]
    # one Dijkstra per connected pathway network (a station), so memory stays (platforms of a station)^2
    _, comp = connected_components(g, directed=True, connection="weak")
    us, vs, ss = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float64)]
    for c in np.unique(comp[src]):
        cs = src[comp[src] == c]
        if len(cs) < 2:
            continue
        nodes = np.flatnonzero(comp == c)
        pos = np.searchsorted(nodes, cs)
        dist = dijkstra(g[nodes][:, nodes], directed=True, indices=pos)[:, pos]
        i, j = np.nonzero(np.isfinite(dist) & (cs[:, None] != cs[None, :]))
        us.append(cs[i])
        vs.append(cs[j])
        ss.append(dist[i, j])
    u, v = np.concatenate(us) + off, np.concatenate(vs) + off
    return (u, v, np.ceil(np.concatenate(ss) - 1e-3).astype(np.int32),
            haversine_m(lat[u], lon[u], lat[v], lon[v]).astype(np.float32))


def _expand_station_rules(rules: pd.DataFrame, stops: pd.DataFrame):
    """Apply station-level transfers.txt rules to the station's child stops.

    A rule naming a station (location_type 1) holds for every child platform; a
    rule naming the platform itself is more specific and wins.
    Returns local ``from, to, type, min_seconds`` arrays.
    """
    lt = stops.location_type.to_numpy()
    parent = stops.parent.to_numpy()
    children = pd.DataFrame({"station": parent, "child": np.arange(len(stops))})
    children = children[(children.station >= 0) & np.isin(lt, (0, 4))[children.child.to_numpy()]]

    def expand(df: pd.DataFrame, col: str) -> pd.DataFrame:
        is_station = lt[df[col].to_numpy()] == 1
        direct = df[~is_station].assign(**{f"{col}_spec": 1})
        st = df[is_station].merge(children, left_on=col, right_on="station", how="inner")
        st = st.drop(columns=[col, "station"]).rename(columns={"child": col}).assign(**{f"{col}_spec": 0})
        return pd.concat([direct, st], ignore_index=True)

    r = rules[["from_stop", "to_stop", "transfer_type", "min_transfer_time"]].copy()
    r = expand(expand(r, "from_stop"), "to_stop")
    r["spec"] = r.from_stop_spec + r.to_stop_spec
    r = r.sort_values("spec", kind="stable").drop_duplicates(["from_stop", "to_stop"], keep="last")
    return (r.from_stop.to_numpy(np.int64), r.to_stop.to_numpy(np.int64),
            r.transfer_type.to_numpy(np.int64), r.min_transfer_time.to_numpy(np.int64))


def _keyed_rules(pf: ParsedFeed) -> pd.DataFrame:
    """The feed's transfers.txt rules naming routes or trips, less those that change no transfer.

    A rule of type 0/1 (or 2 with 0 s) at one stop (not a station) needs no time to change; when every rule
    holding at that stop (its own and its station's, naming routes, trips or neither) needs none either, the
    stop's change time is none whatever the trips, so the rule decides nothing. Feeds list thousands of such
    timed trip-to-trip rules (Metro-North: 23,438 type 1 at one stop); keeping them would give every trip a
    pattern of its own for nothing.
    """
    r = pf.transfers
    if not len(r):
        return r
    for c in ("from_route", "to_route"):  # transfers frames of feeds parsed before routes were read
        if c not in r:
            r = r.assign(**{c: -1})
    keyed = ((r.from_trip >= 0) | (r.to_trip >= 0) | (r.from_route >= 0) | (r.to_route >= 0)).to_numpy()
    ty = r.transfer_type.to_numpy(np.int64)
    fs, ts = r.from_stop.to_numpy(np.int64), r.to_stop.to_numpy(np.int64)
    zero = (ty <= 1) | ((ty == 2) & (r.min_transfer_time.to_numpy(np.int64) <= 0))
    par = pf.stops.parent.to_numpy(np.int64)
    lt = pf.stops.location_type.to_numpy(np.int64)
    blocked = set()  # stops (and stations) where some rule at one place needs time or forbids changing
    for a, b in zip(fs[(ty <= 3) & ~zero & (fs >= 0) & (ts >= 0)].tolist(),
                    ts[(ty <= 3) & ~zero & (fs >= 0) & (ts >= 0)].tolist()):
        if a == b:
            blocked.add(a)
        elif par[a] == b or par[b] == a:  # platform <-> its own station: holds at the platform
            blocked.add(a if par[a] == b else b)
    cand = keyed & (ty <= 3) & zero & (fs == ts) & (fs >= 0)
    idx = np.flatnonzero(cand)
    drop = np.zeros(len(r), dtype=bool)
    for i in idx.tolist():
        q = int(fs[i])
        if lt[q] != 1 and q not in blocked and (par[q] < 0 or int(par[q]) not in blocked):
            drop[i] = True
    return r[keyed & ~drop]


def _trip_rules(rules: pd.DataFrame, part: _FeedPart, st_off: int, trip_off: int, rt_off: int) -> pd.DataFrame:
    """Route- and trip-keyed rules on global trip / route / stop indices (every frequency copy of a trip
    gets the rule; -1 = not given)."""
    inst = pd.DataFrame({"orig": part.inst_trip, "inst": np.arange(len(part.inst_trip)) + trip_off})
    r = rules.copy()
    r["rid"] = np.arange(len(r))
    # a rule may name only one of the trips (-1 = any trip); a named trip without instances drops the rule
    out = r.merge(inst, left_on="from_trip", right_on="orig", how="left").rename(columns={"inst": "ft"})
    out = out.drop(columns=["orig"]).merge(inst, left_on="to_trip", right_on="orig", how="left")
    out = out.rename(columns={"inst": "tt"})
    out = out[~((out.from_trip >= 0) & out.ft.isna()) & ~((out.to_trip >= 0) & out.tt.isna())]
    out = out.assign(ft=out.ft.fillna(-1), tt=out.tt.fillna(-1))
    return pd.DataFrame({
        "from_trip": out.ft.to_numpy(np.int64), "to_trip": out.tt.to_numpy(np.int64),
        "from_stop": np.where(out.from_stop >= 0, out.from_stop + st_off, -1).astype(np.int64),
        "to_stop": np.where(out.to_stop >= 0, out.to_stop + st_off, -1).astype(np.int64),
        "from_route": np.where(out.from_route >= 0, out.from_route + rt_off, -1).astype(np.int64),
        "to_route": np.where(out.to_route >= 0, out.to_route + rt_off, -1).astype(np.int64),
        "transfer_type": out.transfer_type.to_numpy(np.int64),
        "min_transfer_time": np.where(out.transfer_type.to_numpy() == 2, out.min_transfer_time.to_numpy(), 0),
    })
