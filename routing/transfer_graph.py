"""Route- and trip-keyed transfers.txt rules as a search graph (issue 13 item 13).

The kernels know one change time per stop and one time per footpath. A rule
naming routes or trips (``from_route_id``/``to_route_id``/``from_trip_id``/
``to_trip_id``, types 0-3) makes the time of a transfer depend on the two
vehicles as well. This module turns such rules into plain graph structure, so
every kernel (earliest arrival, range, McRAPTOR, fares, latest times) honours
them unchanged:

* At a stop ``q`` where a rule names a route or a trip (on either side, a
  station's rule holding for its platforms), the patterns of that route (or
  that trip: the compiler gives a named trip a pattern of its own) stop at a
  **node** of their own, ``(q, route)`` or ``(q, trip)``, instead of ``q``.
  Every other pattern stops at ``q`` itself, so a graph without such rules is
  the timetable's own (``build`` returns None).
* Between the nodes of ``q`` and of each stop ``u`` a footpath leads to (and
  between the nodes of ``q`` itself) an **edge** carries the time of the most
  specific rule for that pair of vehicles — GTFS ranking: both trips > a trip
  and a route > one trip > both routes > one route > stops only, within a rank
  a rule naming the platform above one naming its station — or, when none
  matches, the stop's own change time or the footpath. Type 3 leaves the edge
  out; type 2 takes ``min_transfer_time``; types 0 and 1 need nothing at one
  stop and the walk between two. The request adds its ``min_change_s`` and
  walking speed to these like to any footpath (``routing.search._walking``).
  Change in place at a node (the same route or trip again) is the node's own
  change time.

Nodes are numbered after the stops (``node_stop`` maps them back), so a
journey found on the graph is a journey on the timetable's stops. Rules between
two stops apply only where a footpath joins them (as for stop-only rules, whose
footpaths the compiler adds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routing.timetable import Timetable

# rank of a rule by what it names: (trips named, routes named) -> rank (GTFS transfers.txt precedence)
_RANK = {(2, 0): 6, (1, 1): 5, (1, 0): 4, (0, 2): 3, (0, 1): 2}


@dataclass(frozen=True)
class SearchGraph:
    """Stops plus rule nodes, with the pattern positions and footpaths the kernels read."""

    n_stops: int  #: real stops S (nodes 0..S-1 are the stops themselves)
    node_stop: np.ndarray  #: (N,) int32 the stop of each node
    pattern_stops: np.ndarray  #: (L,) int32 node of each pattern position
    stop_pattern_offsets: np.ndarray  #: (N+1,) int64 CSR node -> pattern positions
    stop_patterns: np.ndarray  #: (K,) int32
    stop_pattern_pos: np.ndarray  #: (K,) int32
    footpath_offsets: np.ndarray  #: (N+1,) int64 CSR by from-node
    footpath_to: np.ndarray  #: (E,) int32
    footpath_s: np.ndarray  #: (E,) int32 seconds before the request's walking speed and min_change_s
    footpath_m: np.ndarray  #: (E,) float32 straight-line metres (0 within a stop)
    footpath_walkable: np.ndarray  #: (E,) bool the timetable's own footpath (walking to / from a place uses it)
    change_s: np.ndarray  #: (N,) int32 seconds to change in place, -1 = not allowed

    @property
    def n_nodes(self) -> int:
        return int(self.node_stop.shape[0])

    def nodes_of(self) -> dict[int, list[int]]:
        """Stop -> its rule nodes (stops without any are left out)."""
        out: dict[int, list[int]] = {}
        for n in range(self.n_stops, self.n_nodes):
            out.setdefault(int(self.node_stop[n]), []).append(n)
        return out


def _platforms(tt: Timetable, children: dict[int, list[int]], s: int) -> list[tuple[int, int]]:
    """(platform, stop rank) a rule stop stands for: itself (2), or a station's platforms (1)."""
    if int(tt.stop_location_type[s]) == 1:
        return [(c, 1) for c in children.get(s, [])]
    return [(s, 2)]


def build(tt: Timetable) -> SearchGraph | None:
    """The search graph of ``tt``, or None when no transfer rule names a route or a trip (types 0-3)."""
    ty = np.asarray(tt.trip_transfer_type, dtype=np.int64)
    sel = np.flatnonzero((ty <= 3) & (np.asarray(tt.trip_transfer_from_stop) >= 0)
                         & (np.asarray(tt.trip_transfer_to_stop) >= 0))
    if not len(sel):
        return None
    S = int(tt.n_stops)
    trip_ids = np.asarray(tt.trip_ids)
    par = np.asarray(tt.stop_parent)
    lt = np.asarray(tt.stop_location_type)
    children: dict[int, list[int]] = {}
    for c in np.flatnonzero((par >= 0) & (lt == 0)).tolist():
        children.setdefault(int(par[c]), []).append(c)

    def tid(i: int) -> str | None:
        return None if i < 0 else str(trip_ids[i])

    # rules per (from platform, to platform): (rank key, from trip, to trip, from route, to route, type, min s)
    rules: dict[tuple[int, int], list[tuple]] = {}
    named: dict[int, set] = {}  # platform -> route ("r", i) / trip ("t", id) keys named there (either side)
    seen = set()
    for i in sel.tolist():
        ft, tt_ = tid(int(tt.trip_transfer_from_trip[i])), tid(int(tt.trip_transfer_to_trip[i]))
        fr, tr = int(tt.trip_transfer_from_route[i]), int(tt.trip_transfer_to_route[i])
        fs, ts = int(tt.trip_transfer_from_stop[i]), int(tt.trip_transfer_to_stop[i])
        row = (fs, ts, ft, tt_, fr, tr, int(ty[i]), int(tt.trip_transfer_min_s[i]))
        if row in seen:  # every frequency copy of a named trip repeats its rule
            continue
        seen.add(row)
        # a side naming a trip and its route is ranked by the trip (GTFS: the trip takes precedence)
        rank = _RANK[((ft is not None) + (tt_ is not None), (fr >= 0 and ft is None) + (tr >= 0 and tt_ is None))]
        fkey = ("t", ft) if ft is not None else ("r", fr) if fr >= 0 else None
        tkey = ("t", tt_) if tt_ is not None else ("r", tr) if tr >= 0 else None
        for q, a in _platforms(tt, children, fs):
            if fkey is not None:
                named.setdefault(q, set()).add(fkey)
            for u, b in _platforms(tt, children, ts):
                if tkey is not None:
                    named.setdefault(u, set()).add(tkey)
                rules.setdefault((q, u), []).append(((rank, a + b), ft, tt_, fr, tr, int(ty[i]), row[7]))
    # nodes: a pattern position at a stop naming its trip or route moves to that node
    pattern_stops = np.asarray(tt.pattern_stops, dtype=np.int32).copy()
    pso = np.asarray(tt.pattern_stop_offsets, dtype=np.int64)
    pto = np.asarray(tt.pattern_trip_offsets, dtype=np.int64)
    proute = np.asarray(tt.pattern_route, dtype=np.int64)
    node_key: dict[tuple, int] = {}
    node_stop = list(range(S))
    # (trip id, route) a node's transfers are judged by: alighting there (from) and boarding there (to)
    ident_from: list[tuple[str | None, int]] = [(None, -1)] * S
    ident_to: list[tuple[str | None, int]] = [(None, -1)] * S
    trip_route = np.asarray(tt.trip_route, dtype=np.int64)
    link_off = np.asarray(tt.trip_link_offsets, dtype=np.int64)

    def who(p: int, pos: int) -> tuple[tuple[str | None, int], tuple[str | None, int]]:
        """(trip id, route) of alighting and of boarding at position ``pos`` of pattern ``p``: the pattern's
        own, or for a combined (in-seat) trip the part arriving there and the part leaving there."""
        t0 = int(pto[p])
        ids = set(trip_ids[t0:pto[p + 1]].tolist())
        if link_off[t0 + 1] == link_off[t0]:
            x = (next(iter(ids)) if len(ids) == 1 else None, int(proute[p]))
            return x, x
        out = []
        for part, first in tt.trip_parts(t0):
            pp = int(tt.trip_pattern[part])
            if first <= pos < first + int(pso[pp + 1] - pso[pp]):
                # a pattern holding one combined trip (and its copies) names its parts; else only their routes
                out.append((str(trip_ids[part]) if len(ids) == 1 else None, int(trip_route[part])))
        return out[0], out[-1]  # at a stop two parts share: arriving on the earlier, leaving on the later

    def cls(x: tuple[str | None, int], keys: set):
        return ("t", x[0]) if x[0] is not None and ("t", x[0]) in keys else ("r", x[1]) if ("r", x[1]) in keys \
            else None

    for q in sorted(named):
        keys = named[q]
        for e in range(int(tt.stop_pattern_offsets[q]), int(tt.stop_pattern_offsets[q + 1])):
            p = int(tt.stop_patterns[e])
            pos = int(tt.stop_pattern_pos[e])
            wf, wt = who(p, pos)
            cf, ct = cls(wf, keys), cls(wt, keys)
            if cf is None and ct is None:
                continue
            k = (q, cf, ct)
            n = node_key.get(k)
            if n is None:
                n = node_key[k] = len(node_stop)
                node_stop.append(q)
                ident_from.append(wf if cf is not None else (None, -1))
                ident_to.append(wt if ct is not None else (None, -1))
            pattern_stops[pso[p] + pos] = n
    N = len(node_stop)
    node_stop_a = np.asarray(node_stop, dtype=np.int32)
    nodes_at: dict[int, list[int]] = {}
    for n in range(S, N):
        nodes_at.setdefault(node_stop[n], []).append(n)

    def resolve(q: int, u: int, a: int, b: int):
        """Rule seconds for alighting at node ``a`` (stop q) and boarding at node ``b`` (stop u): ``None`` =
        forbidden, ``"generic"`` = no route/trip rule matches."""
        ft, fr = ident_from[a]
        tt2, tr = ident_to[b]
        best, best_key = "generic", None
        for key, rft, rtt, rfr, rtr, rty, rmin in rules.get((q, u), ()):
            if (rft is not None and rft != ft) or (rtt is not None and rtt != tt2) or \
                    (rfr >= 0 and rfr != fr) or (rtr >= 0 and rtr != tr):
                continue
            if best_key is None or key > best_key:
                best_key = key
                best = None if rty == 3 else (rmin if rty == 2 else 0)
        return best

    stop_min = np.asarray(tt.stop_min_change_s, dtype=np.int64)
    no_tr = np.asarray(tt.stop_no_transfer, dtype=bool)
    fo = np.asarray(tt.footpath_offsets, dtype=np.int64)
    fto = np.asarray(tt.footpath_to, dtype=np.int64)
    fs_ = np.asarray(tt.footpath_s, dtype=np.int64)
    fm = np.asarray(tt.footpath_m, dtype=np.float64)
    change = np.where(no_tr, -1, stop_min).astype(np.int64)
    change = np.concatenate([change, np.full(N - S, -1, dtype=np.int64)])
    e_fr, e_to, e_s, e_m = [], [], [], []
    # stops whose transfers can involve a node: those with nodes and those with a footpath into one
    into_nodes = set(nodes_at)
    src = set(nodes_at)
    if into_nodes:
        frm_all = np.repeat(np.arange(S), np.diff(fo))
        hit = np.isin(fto, np.fromiter(into_nodes, dtype=np.int64))
        src.update(frm_all[hit].tolist())
    for q in sorted(src):
        qn = [q] + nodes_at.get(q, [])
        targets = [(q, -1)] + [(int(fto[e]), e) for e in range(int(fo[q]), int(fo[q + 1]))]
        for u, e in targets:
            un = [u] + nodes_at.get(u, [])
            for a in qn:
                for b in un:
                    if a < S and b < S:
                        continue  # the timetable's own stop change / footpath
                    r = resolve(q, u, a, b)
                    if r == "generic":
                        if e < 0:
                            if no_tr[q]:
                                continue
                            s_, m_ = int(stop_min[q]), 0.0
                        else:
                            s_, m_ = int(fs_[e]), float(fm[e])
                    elif r is None:
                        continue
                    else:
                        s_, m_ = int(r), (0.0 if e < 0 else float(fm[e]))
                    if a == b:
                        change[a] = s_
                    else:
                        e_fr.append(a)
                        e_to.append(b)
                        e_s.append(s_)
                        e_m.append(m_)
    # footpaths over nodes: the timetable's own first, then the rule edges, grouped by from-node
    base_fr = np.repeat(np.arange(S), np.diff(fo))
    all_fr = np.concatenate([base_fr, np.asarray(e_fr, dtype=np.int64)])
    all_to = np.concatenate([fto, np.asarray(e_to, dtype=np.int64)])
    all_s = np.concatenate([fs_, np.asarray(e_s, dtype=np.int64)])
    all_m = np.concatenate([fm, np.asarray(e_m, dtype=np.float64)])
    walkable = np.concatenate([np.ones(len(fto), dtype=bool), np.zeros(len(e_fr), dtype=bool)])
    order = np.argsort(all_fr, kind="stable")
    fp_off = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_fr, minlength=N), out=fp_off[1:])
    # node -> pattern positions
    entry_pat = np.repeat(np.arange(len(pso) - 1), np.diff(pso))
    entry_pos = np.arange(len(pattern_stops)) - pso[:-1][entry_pat]
    o = np.argsort(pattern_stops, kind="stable")
    sp_off = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(pattern_stops, minlength=N), out=sp_off[1:])
    return SearchGraph(
        n_stops=S, node_stop=node_stop_a, pattern_stops=pattern_stops,
        stop_pattern_offsets=sp_off, stop_patterns=entry_pat[o].astype(np.int32),
        stop_pattern_pos=entry_pos[o].astype(np.int32),
        footpath_offsets=fp_off, footpath_to=all_to[order].astype(np.int32),
        footpath_s=all_s[order].astype(np.int32), footpath_m=all_m[order].astype(np.float32),
        footpath_walkable=walkable[order], change_s=change.astype(np.int32),
    )
