"""Numba RAPTOR kernels (private; :mod:`routing.search` is the public wrapper).

Everything here works on flat arrays and scalars; no GTFS ids. Conventions:

* ``S`` stops, ``P`` patterns, ``T`` trips, ``K`` = max rides (rounds 1..K,
  round 0 = access walking only), ``E`` footpaths.
* Times are ``int64`` seconds on one *query time axis* (seconds since an
  arbitrary reference instant chosen by the caller). A pattern's stored
  ``int32`` times become query times by adding ``pattern_shift[p, slot]``,
  where ``slot`` 0/1/2 stands for the service day before / of / after the
  query date (so trips past midnight of the previous day are found, and every
  feed keeps its own time zone and DST). Service-day filtering happens
  before the search: ``runs = (run_offsets, run_cols)`` lists, per day slot
  and pattern, the columns of the trips that run that day *and* pass the
  request's filters (wheelchair, modes, operators, real-time cancellations),
  so the kernels never look at a trip that does not run.
* ``INF`` marks "unreached".

Search state is a :class:`RaptorState`-like tuple of arrays allocated once per
(thread, timetable) and reset cheaply through the ``touched`` list.

Label arrays, all shaped ``(K + 1, S)``:

* ``ride`` — arrival at a stop by vehicle in exactly round ``k`` (raw value
  written in round ``k``) with its parent ``ride_pattern/ride_trip/ride_slot/
  ride_board/ride_alight`` (trip column, day slot, board and alight positions);
* ``ready`` — earliest time the passenger can *board* at a stop after round
  ``k`` (after the change time or a footpath), parent ``ready_from`` (the stop
  where the round-``k`` vehicle was left; ``-1`` for access in round 0);
* ``best_ride`` / ``best_ready`` — prefix minima over rounds ``<= k`` (what
  dominates a round-``k`` label: the same or an earlier time with no more
  rides). Keeping prefix minima instead of one tau* array keeps range RAPTOR
  exact over the number of rides.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.int64(1) << np.int64(60)
NO_PICKUP = 1  # GTFS pickup_type/drop_off_type 1 = not available
SKIP = np.int32(1 << 30)  # a stop time >= SKIP: the trip does not serve that stop (real-time SKIPPED)


@njit(cache=True, nogil=True)
def _reset_state(touched, n_touched, ride, best_ride, ready, best_ready, ride_pattern, ready_from, is_touched):
    """Set every label of the touched stops back to INF / -1 (O(touched x K))."""
    K1 = ride.shape[0]
    if n_touched * 8 > ride.shape[1]:
        ride[:] = INF
        best_ride[:] = INF
        ready[:] = INF
        best_ready[:] = INF
        ride_pattern[:] = -1
        ready_from[:] = -2
        for i in range(n_touched):
            is_touched[touched[i]] = False
        return 0
    for i in range(n_touched):
        s = touched[i]
        for k in range(K1):
            ride[k, s] = INF
            best_ride[k, s] = INF
            ready[k, s] = INF
            best_ready[k, s] = INF
            ride_pattern[k, s] = -1
            ready_from[k, s] = -2
        is_touched[s] = False
    return 0


@njit(cache=True, nogil=True, inline="always")
def _touch(s, touched, n_touched, is_touched):
    if not is_touched[s]:
        is_touched[s] = True
        touched[n_touched] = s
        return n_touched + 1
    return n_touched


@njit(cache=True, nogil=True)
def _earliest_trip(p, pos, t, pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_dep,
                   pattern_shift, runs):
    """Trip of pattern ``p`` departing earliest at position ``pos`` at or after query time ``t``.

    ``runs = (run_offsets, run_cols)``: per day slot and pattern, the columns
    of the trips that run that day and pass the filters (ascending; built
    before the search, so no trip that does not run is ever looked at):
    ``run_cols[run_offsets[slot, p]:run_offsets[slot, p + 1]]``.
    Returns ``(column, slot, departure)``; column -1 when none.
    """
    c, slot, d, _ = _trip_before(p, pos, t, -1, -1, INF, pattern_time_offsets, pattern_n_trips, pattern_dep,
                                 pattern_shift, runs)
    return c, slot, d


@njit(cache=True, nogil=True, inline="always")
def _trip_before(p, pos, t, cur_slot, cur_i, cur_dep, pattern_time_offsets, pattern_n_trips, pattern_dep,
                 pattern_shift, runs):
    """Earliest trip of ``p`` at ``pos`` leaving at or after ``t`` and strictly before ``cur_dep``.

    ``cur_i`` is the run index of the trip held now (day slot ``cur_slot``; -1 / -1 / INF for none): in
    its own slot only the trips before it are looked at, so when the one just before it has already
    left (the usual case in a RAPTOR scan) the answer costs one read per day slot, no binary search.
    Returns ``(column, slot, departure, run index)``; column -1 when no trip qualifies.
    """
    run_offsets, run_cols = runs
    n = pattern_n_trips[p]
    base = pattern_time_offsets[p] + pos * n
    best_c = -1
    best_slot = -1
    best_dep = cur_dep
    best_i = -1
    for si in range(3):
        slot = (1, 0, 2)[si]  # the query's own day first: it usually sets a bound the others cannot beat
        sh = pattern_shift[p, slot]
        if sh >= INF:
            continue
        a = run_offsets[slot, p]
        b = run_offsets[slot, p + 1]
        if slot == cur_slot:
            b = cur_i  # trips are in departure order at every position (no overtaking within a pattern)
        if a >= b:
            continue
        want = t - sh
        if pattern_dep[base + run_cols[b - 1]] < want:
            continue  # every trip of that day has left
        if pattern_dep[base + run_cols[a]] + sh >= best_dep:
            continue  # even its first trip leaves later than the best found
        lo = a
        hi = b
        while lo < hi:
            mid = (lo + hi) >> 1
            if pattern_dep[base + run_cols[mid]] < want:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        while i < b:
            raw = pattern_dep[base + run_cols[i]]
            if raw >= SKIP:
                i += 1
                continue
            d = raw + sh
            if d < best_dep:
                best_c = run_cols[i]
                best_slot = slot
                best_dep = d
                best_i = i
            break
    return best_c, best_slot, best_dep, best_i


@njit(cache=True, nogil=True, inline="always")
def _queue_marked(marked, n_marked, is_marked, stop_pattern_offsets, stop_patterns, stop_pattern_pos, pattern_ok,
                  limit, use_limit, first_pos, queue):
    """Queue the usable patterns through the marked stops, each from its earliest marked position.

    Clears the marks. With ``use_limit`` a pattern is queued only from positions before ``limit[p]``
    (pruning in the last rounds). ``first_pos`` (P,) int32 must be -1 for unqueued patterns; returns
    the number of patterns written to ``queue``.
    """
    n_queue = 0
    for i in range(n_marked):
        s = marked[i]
        is_marked[s] = False
        for e in range(stop_pattern_offsets[s], stop_pattern_offsets[s + 1]):
            p = stop_patterns[e]
            if not pattern_ok[p]:
                continue
            pos = stop_pattern_pos[e]
            if use_limit and pos >= limit[p]:
                continue
            if first_pos[p] < 0:
                queue[n_queue] = p
                n_queue += 1
                first_pos[p] = pos
            elif pos < first_pos[p]:
                first_pos[p] = pos
    return n_queue


@njit(cache=True, nogil=True)
def _raptor(
    # timetable -------------------------------------------------------------
    pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
    pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
    stop_pattern_offsets, stop_patterns, stop_pattern_pos,
    footpath_offsets, footpath_to,
    # request ---------------------------------------------------------------
    footpath_change_s,  # (E,) int32 seconds walking+changing along a footpath, -1 = unusable
    stop_change_s,  # (S,) int32 seconds to change at the same stop, -1 = forbidden
    stop_ok,  # (S,) bool stop may be used for boarding / alighting (wheelchair)
    pattern_ok,  # (P,) bool pattern has at least one usable trip
    pattern_shift,  # (P, 3) int64 query-axis shift per day slot, INF = no trips that day
    trip_slots,  # (run_offsets (3, P+1), run_cols): usable trips per day slot and pattern (see _earliest_trip)
    access_stops, access_s,  # (A,) int32 stops reachable at departure, seconds to reach them
    access_mark,  # (A,) bool which access stops start the search (range RAPTOR: where a vehicle leaves now)
    egress_s,  # (S,) int64 seconds from the stop to the destination, -1 = not an egress stop
    t_dep,  # int64 departure on the query axis
    max_rounds,  # int rides
    # state -----------------------------------------------------------------
    ride, best_ride, ride_pattern, ride_trip, ride_slot, ride_board, ride_alight,
    ready, best_ready, ready_from,
    target, best_target, target_stop,  # (K+1,) int64 / int64 / int32
    touched, n_touched, is_touched,
    marked, is_marked, improved, is_improved,
    queue, first_pos,  # (P,) int32 work list, first_pos (P,) int32 initialised to -1
    egress_list,  # (G,) int32 the stops with egress_s >= 0
    tgt_last, tgt_list, in_b1, b1_list,  # (P,) int32 = -1, (P,) int32, (S,) bool = False, (S,) int32
    rev_footpath_offsets, rev_footpath_to, rev_footpath_change_s,  # footpaths transposed (by to-stop)
    b2_last, b2_plist, in_b2, b2_list,  # like tgt_last/tgt_list/in_b1/b1_list
    reset,  # bool: clear the labels of the previous search first (range RAPTOR keeps them)
    setup=True, teardown=True,  # build / clear the destination sets (range RAPTOR does it once)
):
    """Earliest-arrival RAPTOR from ``access_stops`` at ``t_dep`` (one departure time).

    Pareto over the number of rides: after the call ``target[k]`` is the
    arrival found in round ``k`` when it improved on every round ``< k``
    (``INF`` otherwise), ``target_stop[k]`` the egress stop. Labels persist in
    the state (for journey reconstruction and for range RAPTOR, which calls
    this with decreasing ``t_dep`` without resetting).

    Pruning that keeps the result exact: target pruning (a label no earlier
    than the best arrival found is useless), and reachability by rides left —
    in the last round only patterns that reach an egress stop are scanned
    (up to its last egress position) and no transfers are relaxed; in the
    round before, transfers are relaxed only into stops from which such a
    pattern can be boarded (``in_b1``), so vehicle arrivals are only useful at
    stops that reach those by a footpath or a change in place (``in_b2``):
    patterns are scanned up to their last such stop.

    Returns the updated ``n_touched``.
    """
    K1 = max_rounds + 1
    if reset:
        n_touched = _reset_state(touched, n_touched, ride, best_ride, ready, best_ready, ride_pattern,
                                 ready_from, is_touched)
        for k in range(target.shape[0]):
            target[k] = INF
            best_target[k] = INF
            target_stop[k] = -1
    n_marked = 0
    # patterns reaching the destination: last egress position per pattern; stops boarding them
    n_tgt = 0
    n_b1 = 0
    n_b2 = 0
    n_b2p = 0
    for i in range(egress_list.shape[0] if setup else 0):
        g = egress_list[i]
        for e in range(stop_pattern_offsets[g], stop_pattern_offsets[g + 1]):
            p = stop_patterns[e]
            if not pattern_ok[p]:
                continue
            pos = stop_pattern_pos[e]
            if pattern_dropoff[pattern_stop_offsets[p] + pos] == NO_PICKUP:
                continue
            if tgt_last[p] < 0:
                tgt_list[n_tgt] = p
                n_tgt += 1
                tgt_last[p] = pos
            elif pos > tgt_last[p]:
                tgt_last[p] = pos
    for i in range(n_tgt):
        p = tgt_list[i]
        so = pattern_stop_offsets[p]
        for pos in range(tgt_last[p]):
            s = pattern_stops[so + pos]
            if pattern_pickup[so + pos] != NO_PICKUP and not in_b1[s]:
                in_b1[s] = True
                b1_list[n_b1] = s
                n_b1 += 1
    if setup:
        if n_tgt < tgt_list.shape[0]:
            tgt_list[n_tgt] = -1
        if n_b1 < b1_list.shape[0]:
            b1_list[n_b1] = -1
    if K1 >= 3 and setup:
        for i in range(n_b1 + egress_list.shape[0]):
            if i < n_b1:
                b = b1_list[i]
                if stop_change_s[b] >= 0 and not in_b2[b]:
                    in_b2[b] = True
                    b2_list[n_b2] = b
                    n_b2 += 1
                for e in range(rev_footpath_offsets[b], rev_footpath_offsets[b + 1]):
                    u = rev_footpath_to[e]
                    if rev_footpath_change_s[e] >= 0 and not in_b2[u]:
                        in_b2[u] = True
                        b2_list[n_b2] = u
                        n_b2 += 1
            else:
                g = egress_list[i - n_b1]
                if not in_b2[g]:
                    in_b2[g] = True
                    b2_list[n_b2] = g
                    n_b2 += 1
        for i in range(n_b2):
            g = b2_list[i]
            for e in range(stop_pattern_offsets[g], stop_pattern_offsets[g + 1]):
                p = stop_patterns[e]
                if not pattern_ok[p]:
                    continue
                pos = stop_pattern_pos[e]
                if b2_last[p] < 0:
                    b2_plist[n_b2p] = p
                    n_b2p += 1
                    b2_last[p] = pos
                elif pos > b2_last[p]:
                    b2_last[p] = pos
        if n_b2 < b2_list.shape[0]:
            b2_list[n_b2] = -1
        if n_b2p < b2_plist.shape[0]:
            b2_plist[n_b2p] = -1
    # round 0: access
    for i in range(access_stops.shape[0]):
        s = access_stops[i]
        r = t_dep + access_s[i]
        if r < best_ready[0, s] and r < best_target[K1 - 1]:
            n_touched = _touch(s, touched, n_touched, is_touched)
            ready[0, s] = r
            ready_from[0, s] = -1
            for j in range(K1):
                if best_ready[j, s] > r:
                    best_ready[j, s] = r
                else:
                    break
            if access_mark[i] and not is_marked[s]:
                is_marked[s] = True
                marked[n_marked] = s
                n_marked += 1

    for k in range(1, K1):
        if n_marked == 0:
            break
        # patterns through marked stops, from the earliest marked position
        # last ride: only patterns still reaching the destination; last but one: only patterns reaching a
        # stop one ride from it
        n_queue = _queue_marked(marked, n_marked, is_marked, stop_pattern_offsets, stop_patterns, stop_pattern_pos,
                                pattern_ok, tgt_last if k == K1 - 1 else b2_last, k >= K1 - 2, first_pos, queue)
        n_marked = 0
        n_improved = 0
        bound = best_target[k]
        # patterns reaching the destination first: the arrival they give bounds the others at once
        for qq in range(2 * n_queue):
            p = queue[qq % n_queue]
            start = first_pos[p]
            if start < 0:
                continue  # scanned in the first pass
            if qq < n_queue and tgt_last[p] <= start:
                continue
            first_pos[p] = -1
            so = pattern_stop_offsets[p]
            n_pos = pattern_stop_offsets[p + 1] - so
            n = pattern_n_trips[p]
            tb = pattern_time_offsets[p]
            cur = -1
            cur_slot = -1
            cur_i = -1
            cur_shift = np.int64(0)
            board = -1
            end = n_pos
            if k == K1 - 1:
                end = tgt_last[p] + 1
            elif k == K1 - 2:
                end = b2_last[p] + 1
            only_b2 = k == K1 - 2
            for pos in range(start, end):
                s = pattern_stops[so + pos]
                if cur >= 0 and pattern_dropoff[so + pos] != NO_PICKUP and stop_ok[s] and (in_b2[s] or not only_b2):
                    raw = pattern_arr[tb + pos * n + cur]
                    a = raw + cur_shift
                    if a < best_ride[k, s] and a < bound and raw < SKIP:
                        n_touched = _touch(s, touched, n_touched, is_touched)
                        ride[k, s] = a
                        ride_pattern[k, s] = p
                        ride_trip[k, s] = cur
                        ride_slot[k, s] = cur_slot
                        ride_board[k, s] = board
                        ride_alight[k, s] = pos
                        for j in range(k, K1):
                            if best_ride[j, s] > a:
                                best_ride[j, s] = a
                            else:
                                break
                        if egress_s[s] >= 0 and a + egress_s[s] < bound:
                            bound = a + egress_s[s]  # a journey with k rides arriving then exists
                        if not is_improved[s]:
                            is_improved[s] = True
                            improved[n_improved] = s
                            n_improved += 1
                r = best_ready[k - 1, s]
                if r < INF and pattern_pickup[so + pos] != NO_PICKUP and stop_ok[s]:
                    cur_dep = INF if cur < 0 else pattern_dep[tb + pos * n + cur] + cur_shift
                    if r <= cur_dep:
                        c, slot, d, ci = _trip_before(p, pos, r, cur_slot, cur_i, cur_dep, pattern_time_offsets,
                                                      pattern_n_trips, pattern_dep, pattern_shift, trip_slots)
                        if c >= 0:
                            cur = c
                            cur_slot = slot
                            cur_i = ci
                            cur_shift = pattern_shift[p, slot]
                            board = pos
        # transfers: change at the same stop, footpaths, egress
        for i in range(n_improved):
            u = improved[i]
            is_improved[u] = False
            a = ride[k, u]
            if egress_s[u] >= 0:
                cand = a + egress_s[u]
                if cand < best_target[k]:
                    target[k] = cand
                    target_stop[k] = u
                    for j in range(k, K1):
                        if best_target[j] > cand:
                            best_target[j] = cand
                        else:
                            break
        bound = best_target[k]
        if k == K1 - 1:
            for i in range(n_improved):
                is_improved[improved[i]] = False
            break
        only_b1 = k == K1 - 2
        for i in range(n_improved):
            u = improved[i]
            a = ride[k, u]
            if stop_change_s[u] >= 0 and (not only_b1 or in_b1[u]):
                r = a + stop_change_s[u]
                if r < best_ready[k, u] and r < bound:
                    ready[k, u] = r
                    ready_from[k, u] = u
                    for j in range(k, K1):
                        if best_ready[j, u] > r:
                            best_ready[j, u] = r
                        else:
                            break
                    if not is_marked[u]:
                        is_marked[u] = True
                        marked[n_marked] = u
                        n_marked += 1
            for e in range(footpath_offsets[u], footpath_offsets[u + 1]):
                w = footpath_change_s[e]
                if w < 0:
                    continue
                v = footpath_to[e]
                if only_b1 and not in_b1[v]:
                    continue
                r = a + w
                if r < best_ready[k, v] and r < bound:
                    n_touched = _touch(v, touched, n_touched, is_touched)
                    ready[k, v] = r
                    ready_from[k, v] = u
                    for j in range(k, K1):
                        if best_ready[j, v] > r:
                            best_ready[j, v] = r
                        else:
                            break
                    if not is_marked[v]:
                        is_marked[v] = True
                        marked[n_marked] = v
                        n_marked += 1
    for i in range(n_marked):
        is_marked[marked[i]] = False
    if teardown:
        _clear_sets(tgt_last, tgt_list, in_b1, b1_list, b2_last, b2_plist, in_b2, b2_list)
    return n_touched


@njit(cache=True, nogil=True)
def _clear_sets(tgt_last, tgt_list, in_b1, b1_list, b2_last, b2_plist, in_b2, b2_list):
    """Undo the destination sets of :func:`_raptor` (lists hold exactly the set members)."""
    for i in range(tgt_list.shape[0]):
        p = tgt_list[i]
        if p < 0:
            break
        tgt_last[p] = -1
        tgt_list[i] = -1
    for i in range(b1_list.shape[0]):
        s = b1_list[i]
        if s < 0:
            break
        in_b1[s] = False
        b1_list[i] = -1
    for i in range(b2_plist.shape[0]):
        p = b2_plist[i]
        if p < 0:
            break
        b2_last[p] = -1
        b2_plist[i] = -1
    for i in range(b2_list.shape[0]):
        s = b2_list[i]
        if s < 0:
            break
        in_b2[s] = False
        b2_list[i] = -1


@njit(cache=True, nogil=True)
def _departures_in_window(
    pattern_stop_offsets, pattern_stops, pattern_pickup,
    pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_dep,
    stop_pattern_offsets, stop_patterns, stop_pattern_pos,
    stop_ok, pattern_ok, pattern_shift, runs,
    access_stops, access_s, t_lo, t_hi,
):
    """Departure events from the origin in ``[t_lo, t_hi]``, latest first: ``(times, access index)``.

    A departure time is a vehicle departure at an access stop minus the access
    walk, for every usable trip: the only instants at which leaving later can
    still catch the same vehicles (range RAPTOR's iteration points), and the
    access stop where that vehicle leaves.
    """
    cap = 3 * (np.max(pattern_n_trips) if pattern_n_trips.shape[0] else 0)
    buf_c = np.empty(cap, dtype=np.int64)
    buf_slot = np.empty(cap, dtype=np.int64)
    buf_d = np.empty(cap, dtype=np.int64)
    out = [np.int64(0) for _ in range(0)]
    who = [np.int64(0) for _ in range(0)]
    for i in range(access_stops.shape[0]):
        s = access_stops[i]
        if not stop_ok[s]:
            continue
        w = access_s[i]
        for e in range(stop_pattern_offsets[s], stop_pattern_offsets[s + 1]):
            p = stop_patterns[e]
            if not pattern_ok[p]:
                continue
            pos = stop_pattern_pos[e]
            if pattern_pickup[pattern_stop_offsets[p] + pos] == NO_PICKUP:
                continue
            m = _trips_between(p, pos, t_lo + w, t_hi + w, pattern_time_offsets, pattern_n_trips, pattern_dep,
                               pattern_shift, runs, buf_c, buf_slot, buf_d)
            for j in range(m):
                out.append(buf_d[j] - w)
                who.append(i)
    m = len(out)
    times = np.empty(m, dtype=np.int64)
    acc = np.empty(m, dtype=np.int64)
    for j in range(m):
        times[j] = out[j]
        acc[j] = who[j]
    order = np.argsort(-times, kind="mergesort")
    return times[order].copy(), acc[order].copy()


@njit(cache=True, nogil=True)
def _raptor_range(
    pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
    pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
    stop_pattern_offsets, stop_patterns, stop_pattern_pos,
    footpath_offsets, footpath_to,
    footpath_change_s, stop_change_s, stop_ok, pattern_ok, pattern_shift, trip_slots,
    access_stops, access_s, egress_s, departures, event_access, max_rounds,
    ride, best_ride, ride_pattern, ride_trip, ride_slot, ride_board, ride_alight,
    ready, best_ready, ready_from,
    target, best_target, target_stop,
    touched, n_touched, is_touched,
    marked, is_marked, improved, is_improved,
    queue, first_pos,
    egress_list, tgt_last, tgt_list, in_b1, b1_list,
    rev_footpath_offsets, rev_footpath_to, rev_footpath_change_s,
    b2_last, b2_plist, in_b2, b2_list,
    out,  # (len(departures) * K, 3) int64: departure, rides, arrival
):
    """Range RAPTOR (rRAPTOR): one :func:`_raptor` run per departure, latest first, labels kept.

    Labels of later departures stay valid upper bounds for earlier ones, so
    each run only does the work that the earlier departure makes possible.
    Writes every (departure, rides, arrival) that improved the arrival for
    that number of rides into ``out``; returns ``(n_out, n_touched)``. The
    rows are Pareto-optimal over (later departure, earlier arrival, fewer rides)
    up to ties, which the caller removes.
    """
    n_out = 0
    K1 = max_rounds + 1
    mark = np.zeros(access_stops.shape[0], dtype=np.bool_)
    n_ev = departures.shape[0]
    i = 0
    first = True
    while i < n_ev:
        t = departures[i]
        j = i
        while j < n_ev and departures[j] == t:
            mark[event_access[j]] = True
            j += 1
        for k in range(K1):
            target[k] = INF
        n_touched = _raptor(
            pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
            pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
            stop_pattern_offsets, stop_patterns, stop_pattern_pos,
            footpath_offsets, footpath_to,
            footpath_change_s, stop_change_s, stop_ok, pattern_ok, pattern_shift, trip_slots,
            access_stops, access_s, mark, egress_s, t, max_rounds,
            ride, best_ride, ride_pattern, ride_trip, ride_slot, ride_board, ride_alight,
            ready, best_ready, ready_from,
            target, best_target, target_stop,
            touched, n_touched, is_touched,
            marked, is_marked, improved, is_improved,
            queue, first_pos,
            egress_list, tgt_last, tgt_list, in_b1, b1_list,
            rev_footpath_offsets, rev_footpath_to, rev_footpath_change_s,
            b2_last, b2_plist, in_b2, b2_list, False, first, j >= n_ev,
        )
        first = False
        for m in range(i, j):
            mark[event_access[m]] = False
        for k in range(1, K1):
            if target[k] < INF:
                out[n_out, 0] = t
                out[n_out, 1] = k
                out[n_out, 2] = target[k]
                n_out += 1
        i = j
    return n_out, n_touched


@njit(cache=True, nogil=True)
def _reverse_patterns(pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
                      pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
                      stop_pattern_offsets, stop_patterns, stop_pattern_pos):
    """The time-reversed network for arrive-by search (latest departure = earliest arrival backwards).

    Each pattern's stop order and trip order are reversed and times negated
    (``arr' = -dep``, ``dep' = -arr``), pickup and drop-off swap roles.
    Returns ``(stops, pickup, dropoff, arr, dep, stop_pattern_pos, trip_perm)``
    where ``trip_perm[t']`` is the forward trip index of reversed trip ``t'``.
    """
    P = pattern_n_trips.shape[0]
    stops_r = np.empty_like(pattern_stops)
    pick_r = np.empty_like(pattern_pickup)
    drop_r = np.empty_like(pattern_dropoff)
    arr_r = np.empty_like(pattern_arr)
    dep_r = np.empty_like(pattern_dep)
    n_trips_total = pattern_trip_offsets[P]
    perm = np.empty(n_trips_total, dtype=np.int64)
    for p in range(P):
        so = pattern_stop_offsets[p]
        L = pattern_stop_offsets[p + 1] - so
        n = pattern_n_trips[p]
        tb = pattern_time_offsets[p]
        for i in range(L):
            j = L - 1 - i
            stops_r[so + i] = pattern_stops[so + j]
            pick_r[so + i] = pattern_dropoff[so + j]
            drop_r[so + i] = pattern_pickup[so + j]
            for c in range(n):
                d = pattern_dep[tb + j * n + (n - 1 - c)]
                a = pattern_arr[tb + j * n + (n - 1 - c)]
                arr_r[tb + i * n + c] = SKIP if d >= SKIP else -d
                dep_r[tb + i * n + c] = SKIP if a >= SKIP else -a
        t0 = pattern_trip_offsets[p]
        for c in range(n):
            perm[t0 + c] = t0 + n - 1 - c
    pos_r = np.empty_like(stop_pattern_pos)
    for s in range(stop_pattern_offsets.shape[0] - 1):
        for e in range(stop_pattern_offsets[s], stop_pattern_offsets[s + 1]):
            p = stop_patterns[e]
            L = pattern_stop_offsets[p + 1] - pattern_stop_offsets[p]
            pos_r[e] = L - 1 - stop_pattern_pos[e]
    return stops_r, pick_r, drop_r, arr_r, dep_r, pos_r, perm


# ----------------------------------------------------------------------------------------------
# multi-criteria RAPTOR (McRAPTOR): Pareto over (arrival, walking metres) per number of rides

LBL_ACCESS, LBL_RIDE, LBL_TRANSFER = 0, 1, 2


@njit(cache=True, nogil=True, inline="always")
def _dominated(head, next_, L_arr, L_walk, arr, walk):
    """Is (arr, walk) dominated by (or equal to) a label in the list starting at ``head``?"""
    l = head
    while l >= 0:
        if L_arr[l] <= arr and L_walk[l] <= walk:
            return True
        l = next_[l]
    return False


@njit(cache=True, nogil=True)
def _mc_insert(heads, k, s, next_, L_arr, L_walk, arr, walk, n_lab, cap):
    """Insert (arr, walk) into bag ``heads[k, s]`` unless a label of a round ``<= k`` dominates it.

    Removes the labels of round ``k`` it dominates. Returns the new label id
    (``-1`` if dominated, ``-2`` if the pool is full).
    """
    for j in range(k + 1):
        if _dominated(heads[j, s], next_, L_arr, L_walk, arr, walk):
            return -1
    if n_lab >= cap:
        return -2
    prev = -1
    l = heads[k, s]
    while l >= 0:
        nx = next_[l]
        if arr <= L_arr[l] and walk <= L_walk[l]:
            if prev < 0:
                heads[k, s] = nx
            else:
                next_[prev] = nx
        else:
            prev = l
        l = nx
    L_arr[n_lab] = arr
    L_walk[n_lab] = walk
    next_[n_lab] = heads[k, s]
    heads[k, s] = n_lab
    return n_lab


@njit(cache=True, nogil=True)
def _mcraptor(
    pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
    pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
    stop_pattern_offsets, stop_patterns, stop_pattern_pos,
    footpath_offsets, footpath_to,
    footpath_change_s, footpath_walk_m, stop_change_s, stop_ok, pattern_ok, pattern_shift, trip_slots,
    access_stops, access_s, access_m, egress_s, egress_m,
    t_dep, max_rounds, cap, seed,
):
    """McRAPTOR with bags of (arrival, walking metres) labels per (round, stop); round = rides.

    ``footpath_walk_m`` / ``access_m`` / ``egress_m``: int32 walking metres.
    Exact: a label is dropped only when another label with no more rides
    arrives no later with no more walking, or a destination label does.
    ``seed`` (m, 3) int64 rows ``(arrival, walk, rides)`` of journeys already
    known (from RAPTOR) prune from the start; they are not returned again.

    Returns ``(n_targets, target rows (arr, walk, rides, ride label, egress stop),
    labels...)`` with the label pool ``(L_arr, L_walk, L_kind, L_parent, L_stop,
    L_p, L_c, L_slot, L_b, L_a)``; ``n_targets = -1`` when the pool of ``cap``
    labels overflowed (call again with a larger one).
    """
    S = stop_pattern_offsets.shape[0] - 1
    K1 = max_rounds + 1
    L_arr = np.empty(cap, dtype=np.int64)
    L_walk = np.empty(cap, dtype=np.int64)
    L_kind = np.empty(cap, dtype=np.int8)
    L_parent = np.empty(cap, dtype=np.int32)
    L_stop = np.empty(cap, dtype=np.int32)
    L_p = np.empty(cap, dtype=np.int32)
    L_c = np.empty(cap, dtype=np.int32)
    L_slot = np.empty(cap, dtype=np.int8)
    L_b = np.empty(cap, dtype=np.int32)
    L_a = np.empty(cap, dtype=np.int32)
    next_ = np.empty(cap, dtype=np.int32)
    ride_heads = np.full((K1, S), -1, dtype=np.int32)
    ready_heads = np.full((K1, S), -1, dtype=np.int32)
    tgt = np.empty((4096, 5), dtype=np.int64)
    n_tgt = 0
    for i in range(min(seed.shape[0], 64)):
        tgt[n_tgt, 0] = seed[i, 0]
        tgt[n_tgt, 1] = seed[i, 1]
        tgt[n_tgt, 2] = seed[i, 2]
        tgt[n_tgt, 3] = -1
        tgt[n_tgt, 4] = -1
        n_tgt += 1
    n_lab = 0
    marked = np.zeros(S, dtype=np.int32)
    is_marked = np.zeros(S, dtype=np.bool_)
    n_marked = 0
    improved = np.zeros(S, dtype=np.int32)
    is_improved = np.zeros(S, dtype=np.bool_)
    first_pos = np.full(pattern_n_trips.shape[0], -1, dtype=np.int32)
    queue = np.zeros(pattern_n_trips.shape[0], dtype=np.int32)
    # last ride: only patterns reaching an egress stop matter, up to their last egress position
    tgt_last = np.full(pattern_n_trips.shape[0], -1, dtype=np.int64)
    for g in range(S):
        if egress_s[g] < 0:
            continue
        for e in range(stop_pattern_offsets[g], stop_pattern_offsets[g + 1]):
            p = stop_patterns[e]
            pos = stop_pattern_pos[e]
            if pattern_dropoff[pattern_stop_offsets[p] + pos] != NO_PICKUP and pos > tgt_last[p]:
                tgt_last[p] = pos
    RB = 1024
    rb_c = np.empty(RB, dtype=np.int64)
    rb_slot = np.empty(RB, dtype=np.int64)
    rb_dep = np.empty(RB, dtype=np.int64)
    rb_walk = np.empty(RB, dtype=np.int64)
    rb_parent = np.empty(RB, dtype=np.int64)
    rb_board = np.empty(RB, dtype=np.int64)

    for i in range(access_stops.shape[0]):
        s = access_stops[i]
        l = _mc_insert(ready_heads, 0, s, next_, L_arr, L_walk, t_dep + access_s[i], np.int64(access_m[i]),
                       n_lab, cap)
        if l == -2:
            return -1, tgt, L_arr, L_walk, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
        if l >= 0:
            n_lab += 1
            L_kind[l] = LBL_ACCESS
            L_parent[l] = -1
            L_stop[l] = s
            if not is_marked[s]:
                is_marked[s] = True
                marked[n_marked] = s
                n_marked += 1

    for k in range(1, K1):
        if n_marked == 0:
            break
        n_queue = _queue_marked(marked, n_marked, is_marked, stop_pattern_offsets, stop_patterns, stop_pattern_pos,
                                pattern_ok, tgt_last, k == K1 - 1, first_pos, queue)
        n_marked = 0
        n_improved = 0
        for qi in range(n_queue):
            p = queue[qi]
            start = first_pos[p]
            first_pos[p] = -1
            so = pattern_stop_offsets[p]
            n_pos = pattern_stop_offsets[p + 1] - so
            n = pattern_n_trips[p]
            tb = pattern_time_offsets[p]
            n_rb = 0
            end = n_pos if k < K1 - 1 else tgt_last[p] + 1
            for pos in range(start, end):
                s = pattern_stops[so + pos]
                # alight every route-bag entry here
                if n_rb > 0 and pattern_dropoff[so + pos] != NO_PICKUP and stop_ok[s]:
                    for r in range(n_rb):
                        raw = pattern_arr[tb + pos * n + rb_c[r]]
                        if raw >= SKIP:
                            continue
                        a = raw + pattern_shift[p, rb_slot[r]]
                        w = rb_walk[r]
                        pruned = False
                        for ti in range(n_tgt):
                            if tgt[ti, 0] <= a and tgt[ti, 1] <= w and tgt[ti, 2] <= k:
                                pruned = True
                                break
                        if pruned:
                            continue
                        l = _mc_insert(ride_heads, k, s, next_, L_arr, L_walk, a, w, n_lab, cap)
                        if l == -2:
                            return -1, tgt, L_arr, L_walk, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
                        if l >= 0:
                            n_lab += 1
                            L_kind[l] = LBL_RIDE
                            L_parent[l] = rb_parent[r]
                            L_stop[l] = s
                            L_p[l] = p
                            L_c[l] = rb_c[r]
                            L_slot[l] = rb_slot[r]
                            L_b[l] = rb_board[r]
                            L_a[l] = pos
                            if not is_improved[s]:
                                is_improved[s] = True
                                improved[n_improved] = s
                                n_improved += 1
                # board with the labels of the previous round
                if pattern_pickup[so + pos] != NO_PICKUP and stop_ok[s]:
                    l = ready_heads[k - 1, s]
                    while l >= 0:
                        c, slot, d = _earliest_trip(p, pos, L_arr[l], pattern_time_offsets, pattern_n_trips,
                                                    pattern_trip_offsets, pattern_dep, pattern_shift, trip_slots)
                        if c >= 0:
                            w = L_walk[l]
                            # compare trips by their departure here (FIFO: earlier here, earlier everywhere after)
                            for r in range(n_rb):
                                rb_dep[r] = pattern_dep[tb + pos * n + rb_c[r]] + pattern_shift[p, rb_slot[r]]
                            dom = False
                            for r in range(n_rb):
                                if rb_dep[r] <= d and rb_walk[r] <= w:
                                    dom = True
                                    break
                            if not dom:
                                keep = 0
                                for r in range(n_rb):
                                    if not (d <= rb_dep[r] and w <= rb_walk[r]):
                                        rb_c[keep] = rb_c[r]
                                        rb_slot[keep] = rb_slot[r]
                                        rb_dep[keep] = rb_dep[r]
                                        rb_walk[keep] = rb_walk[r]
                                        rb_parent[keep] = rb_parent[r]
                                        rb_board[keep] = rb_board[r]
                                        keep += 1
                                n_rb = keep
                                if n_rb < RB:
                                    rb_c[n_rb] = c
                                    rb_slot[n_rb] = slot
                                    rb_dep[n_rb] = d
                                    rb_walk[n_rb] = w
                                    rb_parent[n_rb] = l
                                    rb_board[n_rb] = pos
                                    n_rb += 1
                        l = next_[l]
                # route-bag entries keep their departure at the boarding stop; later stops compare by it
        # destination and transfers
        for i in range(n_improved):
            u = improved[i]
            is_improved[u] = False
            l = ride_heads[k, u]
            while l >= 0:
                a = L_arr[l]
                w = L_walk[l]
                if egress_s[u] >= 0:
                    ta = a + egress_s[u]
                    tw = w + egress_m[u]
                    dom = False
                    for ti in range(n_tgt):
                        if tgt[ti, 0] <= ta and tgt[ti, 1] <= tw and tgt[ti, 2] <= k:
                            dom = True
                            break
                    if not dom and n_tgt < tgt.shape[0]:
                        tgt[n_tgt, 0] = ta
                        tgt[n_tgt, 1] = tw
                        tgt[n_tgt, 2] = k
                        tgt[n_tgt, 3] = l
                        tgt[n_tgt, 4] = u
                        n_tgt += 1
                l = next_[l]
        if k == K1 - 1:
            break
        for i in range(n_improved):
            u = improved[i]
            l = ride_heads[k, u]
            while l >= 0:
                a = L_arr[l]
                w = L_walk[l]
                nxt_l = next_[l]
                for e in range(footpath_offsets[u] - 1, footpath_offsets[u + 1]):
                    if e < footpath_offsets[u]:
                        v = u
                        if stop_change_s[u] < 0:
                            continue
                        ra = a + stop_change_s[u]
                        rw = w
                    else:
                        if footpath_change_s[e] < 0:
                            continue
                        v = footpath_to[e]
                        ra = a + footpath_change_s[e]
                        rw = w + footpath_walk_m[e]
                    dom = False
                    for ti in range(n_tgt):
                        if tgt[ti, 0] <= ra and tgt[ti, 1] <= rw and tgt[ti, 2] <= k:
                            dom = True
                            break
                    if dom:
                        continue
                    nl = _mc_insert(ready_heads, k, v, next_, L_arr, L_walk, ra, rw, n_lab, cap)
                    if nl == -2:
                        return -1, tgt, L_arr, L_walk, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
                    if nl >= 0:
                        n_lab += 1
                        L_kind[nl] = LBL_TRANSFER
                        L_parent[nl] = l
                        L_stop[nl] = v
                        if not is_marked[v]:
                            is_marked[v] = True
                            marked[n_marked] = v
                            n_marked += 1
                l = nxt_l
    return n_tgt, tgt, L_arr, L_walk, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a


# ----------------------------------------------------------------------------------------------
# fare-aware McRAPTOR: Pareto over (arrival, fare) per number of rides, labels carrying fare state

#: Columns of the fare state of a label (``L_st[l, :]``) and of a route-bag entry.
FS_ONET, FS_OLAST, FS_OFROM, FS_ODEP, FS_OARR, FS_OGROUP, FS_OCHAIN, FS_PG, FS_PDEP, FS_PARR, FS_PCHAIN = range(11)
N_FS = 11
UNPRICED_COST = np.int64(1) << np.int64(40)  # == routing.fares.UNPRICED
#: Start time of a transfer allowance that has run out (every timed rule fails; see :func:`_expire`).
EXPIRED = -(np.int64(1) << np.int64(50))


@njit(cache=True, nogil=True)
def _fare_leg(onet, ofrom, ta, dist, odep, oarr, pg, pdep, parr, pchain, ft):
    """Price of the open effective fare leg if it ended here: ``(charge, leg group, transfer chain)``.

    ``onet``/``ofrom``: network and boarding area set of its first ride; ``ta``
    the alighting area set; ``dist`` metres of the ride (distance-band
    networks); ``odep``/``oarr`` its first departure / last arrival (query
    seconds); ``pg``/``pdep``/``parr``/``pchain``: group, departure, arrival and
    transfer chain of the effective leg before it (``pg = -1``: none or not
    priced). ``ft``: :meth:`routing.fares.FareTables.kernel_args`.
    """
    (network_kind, leg_price, leg_group, network_group, band_offsets, band_up_to_m, band_price, join,
     xfer_kind, xfer_amount, xfer_limit_s, xfer_limit_type, xfer_count) = ft
    if onet < 0:
        return UNPRICED_COST, -1, 0
    price = np.int64(-1)
    g = -1
    if network_kind[onet] == 0:
        price = leg_price[onet, ofrom, ta]
        g = leg_group[onet, ofrom, ta]
    else:
        for b in range(band_offsets[onet], band_offsets[onet + 1]):
            if dist <= band_up_to_m[b]:
                price = band_price[b]
                break
        g = network_group[onet]
    if price < 0:
        return UNPRICED_COST, -1, 0
    if pg >= 0 and g >= 0:
        kind = xfer_kind[pg, g]
        if kind != 0:
            ok = True
            lim = xfer_limit_s[pg, g]
            if lim >= 0:
                lt = xfer_limit_type[pg, g]
                start = pdep if lt <= 1 else parr
                end = oarr if (lt == 0 or lt == 3) else odep
                ok = end - start <= lim
            if kind != 3:
                cnt = xfer_count[pg, g]
                if cnt >= 0 and pchain + 1 > cnt:
                    ok = False
            if ok:
                amount = xfer_amount[pg, g]
                if kind == 1:
                    return amount, g, pchain + 1
                if kind == 2:
                    return amount + price, g, pchain + 1
                return price - min(amount, price), g, 0
    return price, g, 0


@njit(cache=True, nogil=True, inline="always")
def _canon_label(st, fare, paid, net_joins, group_out, timed):
    """Reset the state fields that cannot change any future price; returns the label's ``paid``.

    A label whose open leg cannot be extended by a join is *closed*: its
    whole fare is paid and the legs before it no longer matter.
    """
    if st[FS_OLAST] < 0 or not net_joins[st[FS_OLAST]]:
        st[FS_ONET] = -1
        st[FS_OLAST] = -1
        st[FS_OFROM] = -1
        st[FS_PG] = -1
        paid = fare
    if st[FS_OGROUP] < 0 or not group_out[st[FS_OGROUP]]:
        st[FS_OGROUP] = -1
        st[FS_OCHAIN] = -1
        if st[FS_OLAST] < 0:
            st[FS_ODEP] = -1
        st[FS_OARR] = -1
    if st[FS_PG] >= 0 and not group_out[st[FS_PG]]:
        st[FS_PG] = -1
    if st[FS_PG] < 0:
        st[FS_PDEP] = -1
        st[FS_PARR] = -1
        st[FS_PCHAIN] = -1
    if not timed:
        st[FS_ODEP] = -1
        st[FS_OARR] = -1
        st[FS_PDEP] = -1
        st[FS_PARR] = -1
    return paid


@njit(cache=True, nogil=True, inline="always")
def _same_state(a, b):
    for i in range(N_FS):
        if a[i] != b[i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _fare_insert(heads, k, s, next_, L_arr, L_fare, L_paid, L_st, arr, fare, paid, st, n_lab, cap, bag_cap):
    """Insert a label into bag ``heads[k, s]`` unless a label of a round ``<= k`` dominates it.

    Domination needs the same fare state (times of the open leg and of the
    transfer allowance included), no more fare, no more paid and an arrival no
    later: the earlier label can board every trip the later one can (the
    kernel boards every trip that can matter, see :func:`_mcraptor_fare`) and
    a journey's price depends only on the fare state and the trips taken from
    here. Removes the round-``k`` labels it dominates. Returns the label id,
    ``-1`` if dominated, ``-2`` if the pool is full, ``-3`` if the bag would
    hold more than ``bag_cap`` labels.
    """
    for j in range(k + 1):
        l = heads[j, s]
        while l >= 0:
            if L_fare[l] <= fare and L_paid[l] <= paid and L_arr[l] <= arr and _same_state(L_st[l], st):
                return -1
            l = next_[l]
    if n_lab >= cap:
        return -2
    prev = -1
    l = heads[k, s]
    n_bag = 0
    while l >= 0:
        nx = next_[l]
        if fare <= L_fare[l] and paid <= L_paid[l] and arr <= L_arr[l] and _same_state(L_st[l], st):
            if prev < 0:
                heads[k, s] = nx
            else:
                next_[prev] = nx
        else:
            prev = l
            n_bag += 1
        l = nx
    if n_bag >= bag_cap:
        return -3
    L_arr[n_lab] = arr
    L_fare[n_lab] = fare
    L_paid[n_lab] = paid
    for i in range(N_FS):
        L_st[n_lab, i] = st[i]
    next_[n_lab] = heads[k, s]
    heads[k, s] = n_lab
    return n_lab


@njit(cache=True, nogil=True, inline="always")
def _beaten(tgt, n_tgt, seed, a, f, k):
    """A target found or a seed journey arrives no later, costs no more, with no more rides."""
    for ti in range(n_tgt):
        if tgt[ti, 0] <= a and tgt[ti, 1] <= f and tgt[ti, 2] <= k:
            return True
    for ti in range(seed.shape[0]):
        if seed[ti, 0] <= a and seed[ti, 1] <= f and seed[ti, 2] <= k:
            return True
    return False


@njit(cache=True, nogil=True)
def _settle_allowance(st, d, ft):
    """Decide the previous leg's timed transfer rules at boarding when they can be decided (canonical state).

    The new leg (network ``FS_ONET``, boarding area ``FS_OFROM``, first
    departure ``d``) is priced against the previous one at every alighting;
    when every timed rule from the previous leg's group into a group this leg
    can have measures its end at the leg's departure (limit types 1 and 2),
    each rule's outcome is known now. If all hold, the previous leg's times
    become ``d`` (every limit met); if all fail, :data:`EXPIRED`. Labels whose
    previous legs differ only in times then share a state (and one dominates
    the other). Otherwise (or with limit types 0/3) the state is left alone.
    """
    (network_kind, leg_price, leg_group, network_group, band_offsets, band_up_to_m, band_price, join,
     xfer_kind, xfer_amount, xfer_limit_s, xfer_limit_type, xfer_count) = ft
    onet = st[FS_ONET]
    pg = st[FS_PG]
    if onet < 0:
        return
    all_ok = True
    all_fail = True
    n_g = leg_group.shape[2] if network_kind[onet] == 0 else 1
    for ta in range(n_g):
        g = leg_group[onet, st[FS_OFROM], ta] if network_kind[onet] == 0 else network_group[onet]
        if g < 0 or xfer_kind[pg, g] == 0 or xfer_limit_s[pg, g] < 0:
            continue
        lt = xfer_limit_type[pg, g]
        if lt == 0 or lt == 3:
            return  # measured to the leg's arrival: depends on where it ends
        start = st[FS_PDEP] if lt <= 1 else st[FS_PARR]
        if d - start <= xfer_limit_s[pg, g]:
            all_fail = False
        else:
            all_ok = False
    if all_ok:
        st[FS_PDEP] = d
        st[FS_PARR] = d
    elif all_fail:
        st[FS_PDEP] = EXPIRED
        st[FS_PARR] = EXPIRED


@njit(cache=True, nogil=True, inline="always")
def _min_rides(lbf, s):
    """Fewest more rides with which the destination can be reached from ``s`` (``lbf``: a bound of
    :func:`_fare_lower_bounds`; its row count when never)."""
    for j in range(lbf.shape[0]):
        if lbf[j, s] < INF:
            return j
    return lbf.shape[0]


@njit(cache=True, nogil=True)
def _grow(a, m):
    b = np.empty(m, dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(cache=True, nogil=True, inline="always")
def _expire(st, arr, group_lim, group_untimed):
    """Drop a transfer allowance that has run out by ``arr`` (so equal futures get equal states).

    Applies to a closed leg (``FS_OLAST < 0``) whose group has timed transfer
    rules out: when even the latest start (its departure or arrival) plus the
    longest limit is before ``arr``, no timed rule can hold for any later leg
    (whose departure and arrival are ``>= arr``). Without untimed rules out the
    group no longer matters (a failed rule prices like no rule); with them the
    times become :data:`EXPIRED` (every timed rule fails, untimed ones hold).
    """
    g = st[FS_OGROUP]
    if st[FS_OLAST] >= 0 or g < 0 or st[FS_ODEP] == EXPIRED:
        return
    lim = group_lim[g]
    if lim < 0 or max(st[FS_ODEP], st[FS_OARR]) + lim >= arr:
        return
    if group_untimed[g]:
        st[FS_ODEP] = EXPIRED
        st[FS_OARR] = EXPIRED
    else:
        st[FS_OGROUP] = -1
        st[FS_OCHAIN] = -1
        st[FS_ODEP] = -1
        st[FS_OARR] = -1


@njit(cache=True, nogil=True)
def _trips_between(p, pos, t0, t1, pattern_time_offsets, pattern_n_trips, pattern_dep, pattern_shift, runs,
                   out_c, out_slot, out_d):
    """Every running trip of pattern ``p`` departing at position ``pos`` in ``[t0, t1]`` (query seconds).

    Fills ``out_c`` / ``out_slot`` / ``out_d`` (column, day slot, departure); returns how many.
    """
    run_offsets, run_cols = runs
    n = pattern_n_trips[p]
    base = pattern_time_offsets[p] + pos * n
    m = 0
    for slot in range(3):
        sh = pattern_shift[p, slot]
        if sh >= INF:
            continue
        a = run_offsets[slot, p]
        b = run_offsets[slot, p + 1]
        want = t0 - sh
        lo = a
        hi = b
        while lo < hi:
            mid = (lo + hi) >> 1
            if pattern_dep[base + run_cols[mid]] < want:
                lo = mid + 1
            else:
                hi = mid
        for i in range(lo, b):
            raw = pattern_dep[base + run_cols[i]]
            if raw >= SKIP:
                continue
            d = raw + sh
            if d > t1:
                break
            out_c[m] = run_cols[i]
            out_slot[m] = slot
            out_d[m] = d
            m += 1
    return m


NEG = -INF


@njit(cache=True, nogil=True)
def _latest_times(pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff, pattern_time_offsets,
                  pattern_n_trips, pattern_arr, pattern_dep, footpath_offsets, footpath_to, footpath_change_s,
                  stop_change_s, stop_ok, pattern_ok, pattern_shift, runs, egress_s, t_arr, t_dep, max_rides):
    """Latest times at each stop from which the destination is still reachable by ``t_arr`` (query seconds).

    Returns ``(A, B)``, both ``(max_rides + 1, S)`` int64 (``NEG`` = never):
    ``A[j, s]`` the latest arrival at ``s`` by a vehicle (before changing or
    walking on) and ``B[j, s]`` the latest departure of a vehicle boarded at
    ``s``, from which the destination (``egress_s``) is reached by ``t_arr``
    with at most ``j`` more rides (one change in place or one footpath between
    rides, as the searches). Every trip that runs is looked at (no FIFO or
    day-slot assumption); trips leaving before ``t_dep`` are skipped. A label
    arriving at ``s`` after ``A[j, s]`` (ready to board after ``B[j, s]``)
    with ``j`` rides left cannot reach the destination in time.
    """
    S = stop_ok.shape[0]
    run_offsets, run_cols = runs
    A = np.full((max_rides + 1, S), NEG, dtype=np.int64)
    B = np.full((max_rides + 1, S), NEG, dtype=np.int64)
    for s in range(S):
        if egress_s[s] >= 0 and stop_ok[s]:
            A[0, s] = t_arr - egress_s[s]
    for j in range(1, max_rides + 1):
        for s in range(S):
            B[j, s] = B[j - 1, s]
        for p in range(pattern_n_trips.shape[0]):
            if not pattern_ok[p]:
                continue
            so = pattern_stop_offsets[p]
            n_pos = pattern_stop_offsets[p + 1] - so
            n = pattern_n_trips[p]
            tb = pattern_time_offsets[p]
            for slot in range(3):
                sh = pattern_shift[p, slot]
                if sh >= INF:
                    continue
                for i in range(run_offsets[slot, p], run_offsets[slot, p + 1]):
                    c = run_cols[i]
                    reach = False
                    for pos in range(n_pos - 1, -1, -1):
                        s = pattern_stops[so + pos]
                        if not stop_ok[s]:
                            continue
                        if reach and pattern_pickup[so + pos] != NO_PICKUP:
                            raw = pattern_dep[tb + pos * n + c]
                            if raw < SKIP:
                                d = raw + sh
                                if d < t_dep:
                                    break  # earlier positions leave earlier still
                                if d > B[j, s]:
                                    B[j, s] = d
                        if pattern_dropoff[so + pos] != NO_PICKUP:
                            raw = pattern_arr[tb + pos * n + c]
                            if raw < SKIP and raw + sh <= A[j - 1, s]:
                                reach = True
        for s in range(S):
            A[j, s] = A[j - 1, s]
        for u in range(S):
            for e in range(footpath_offsets[u] - 1, footpath_offsets[u + 1]):
                if e < footpath_offsets[u]:
                    v = u
                    w = stop_change_s[u]
                else:
                    v = footpath_to[e]
                    w = footpath_change_s[e]
                if w < 0 or B[j, v] == NEG:
                    continue
                if B[j, v] - w > A[j, u]:
                    A[j, u] = B[j, v] - w
    return A, B


@njit(cache=True, nogil=True)
def _ride_charge_lb(net, ai, aj, ft, joined, min_k1, max_k3):
    """A lower bound of what a ride of network ``net`` from area set ``ai`` to ``aj`` adds to a fare when it
    starts a new fare leg, whatever leg comes before it (0 for networks with joins: the leg may go on)."""
    (network_kind, leg_price, leg_group, network_group, band_offsets, band_up_to_m, band_price, join,
     xfer_kind, xfer_amount, xfer_limit_s, xfer_limit_type, xfer_count) = ft
    if net < 0:
        return UNPRICED_COST
    if joined[net]:
        return np.int64(0)
    if network_kind[net] == 0:
        price = leg_price[net, ai, aj]
        g = leg_group[net, ai, aj]
    else:
        price = np.int64(-1)
        for b in range(band_offsets[net], band_offsets[net + 1]):
            if price < 0 or band_price[b] < price:
                price = band_price[b]
        g = network_group[net]
    if price < 0:
        return UNPRICED_COST
    lb = price
    if g >= 0:
        lb = min(lb, min_k1[g], max(price - max_k3[g], 0))
    return max(lb, 0)


@njit(cache=True, nogil=True)
def _fare_lower_bounds(pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff, footpath_offsets,
                       footpath_to, footpath_change_s, stop_change_s, stop_ok, pattern_ok, egress_s, pattern_net,
                       stop_area, ft, max_rides):
    """Per rides left and stop, a lower bound of the fare still to pay to reach the destination (``egress_s``).

    Returns ``(FA, FB)``, ``(max_rides + 1, S)`` int64 (``INF`` = unreachable):
    ``FA[j, s]`` after arriving at ``s`` by a vehicle, ``FB[j, s]`` when
    ready to board at ``s``, with at most ``j`` more rides. Each ride counts
    :func:`_ride_charge_lb` (rule discounts assumed to hold, networks with joins
    free); timetables are not looked at. A label's final fare is at least its
    ``paid`` plus this.
    """
    (network_kind, leg_price, leg_group, network_group, band_offsets, band_up_to_m, band_price, join,
     xfer_kind, xfer_amount, xfer_limit_s, xfer_limit_type, xfer_count) = ft
    S = stop_ok.shape[0]
    N = join.shape[0]
    G = xfer_kind.shape[0]
    joined = np.zeros(max(N, 1), dtype=np.bool_)
    for a in range(N):
        for b in range(N):
            if join[a, b]:
                joined[a] = True
                joined[b] = True
    min_k1 = np.full(max(G, 1), INF, dtype=np.int64)
    max_k3 = np.zeros(max(G, 1), dtype=np.int64)
    for a in range(G):
        for b in range(G):
            if xfer_kind[a, b] == 1:
                min_k1[b] = min(min_k1[b], xfer_amount[a, b])
            elif xfer_kind[a, b] == 3:
                max_k3[b] = max(max_k3[b], xfer_amount[a, b])
    FA = np.full((max_rides + 1, S), INF, dtype=np.int64)
    FB = np.full((max_rides + 1, S), INF, dtype=np.int64)
    for s in range(S):
        if egress_s[s] >= 0 and stop_ok[s]:
            FA[0, s] = 0
    for j in range(1, max_rides + 1):
        for s in range(S):
            FB[j, s] = FB[j - 1, s]
        for p in range(pattern_net.shape[0]):
            if not pattern_ok[p]:
                continue
            so = pattern_stop_offsets[p]
            n_pos = pattern_stop_offsets[p + 1] - so
            net = pattern_net[p]
            for i in range(n_pos - 1):
                s = pattern_stops[so + i]
                if pattern_pickup[so + i] == NO_PICKUP or not stop_ok[s]:
                    continue
                best = FB[j, s]
                for q in range(i + 1, n_pos):
                    v = pattern_stops[so + q]
                    if pattern_dropoff[so + q] == NO_PICKUP or not stop_ok[v] or FA[j - 1, v] >= INF:
                        continue
                    c = _ride_charge_lb(net, stop_area[s], stop_area[v], ft, joined, min_k1, max_k3) + FA[j - 1, v]
                    if c < best:
                        best = c
                FB[j, s] = best
        for s in range(S):
            FA[j, s] = FA[j - 1, s]
        for u in range(S):
            for e in range(footpath_offsets[u] - 1, footpath_offsets[u + 1]):
                if e < footpath_offsets[u]:
                    v = u
                    w = stop_change_s[u]
                else:
                    v = footpath_to[e]
                    w = footpath_change_s[e]
                if w >= 0 and FB[j, v] < FA[j, u]:
                    FA[j, u] = FB[j, v]
    return FA, FB


@njit(cache=True, nogil=True)
def _mcraptor_fare(
    pattern_stop_offsets, pattern_stops, pattern_pickup, pattern_dropoff,
    pattern_time_offsets, pattern_n_trips, pattern_trip_offsets, pattern_arr, pattern_dep,
    stop_pattern_offsets, stop_patterns, stop_pattern_pos,
    footpath_offsets, footpath_to,
    footpath_change_s, stop_change_s, stop_ok, pattern_ok, pattern_shift, trip_slots,
    access_stops, access_s, egress_s,
    pattern_net,  # (P,) int32 fare network of the pattern's route, -1 = not priced
    stop_area,  # (S,) int32 area-set index
    pattern_stop_dist_m,  # (L,) float32 metres along the pattern (distance-band fares)
    ft,  # FareTables.kernel_args()
    net_joins, group_out,  # (N,) bool: network joins some network; (G,) bool: group has a transfer rule out
    timed,  # bool: some transfer rule has a duration limit
    group_lim,  # (G,) int64 longest duration limit of the group's timed transfer rules out, -1 = none
    group_untimed,  # (G,) bool: the group has a transfer rule out without a duration limit
    net_later,  # (N,) bool: a leg of this network can start a timed transfer allowance
    every_trip,  # bool: board every trip up to t_max where trip times can change a price (else the first only)
    t_max,  # int64 query seconds: no label or journey arrives later (INF = no horizon)
    lat_A, lat_B,  # (R+1, S) int64 _latest_times for t_max (latest vehicle arrival / boarding per rides left)
    prune_lat,  # bool: drop labels later than lat_A / lat_B (they cannot reach the destination by t_max)
    seed,  # (m, 3) int64 (arrival, fare, rides) of journeys known to exist: labels they dominate are dropped
    lbf_A, lbf_B, ea_lb,  # with prune_lat: _fare_lower_bounds (R+1, S); the earliest arrival at the destination
    bag_cap,  # int64 most labels in one bag (round, stop); more -> returns -1 like a full pool
    max_fare,  # int64 minor units, -1 = no limit
    t_dep, max_rounds, cap,
):
    """McRAPTOR over (arrival, rides, fare) with labels carrying the open fare leg and transfer allowance.

    A label holds its arrival, ``fare`` (minor units: every effective fare leg
    priced, the open one as if it ended at this stop), ``paid`` (the part no
    future ride can change: a lower bound of the final fare) and its fare state
    ``L_st`` (columns ``FS_*``: open leg's first/last network, boarding area,
    first departure, last arrival, group, transfer chain; the previous leg's
    group, departure, arrival, chain). Labels are compared only with labels of
    the same state (see :func:`_fare_insert`); the state is canonicalised
    (:func:`_canon_label`, :func:`_expire`) so that states that price every
    future alike are equal.

    Boarding: from a label the first reachable trip of a pattern; with
    ``every_trip`` also every later trip departing by ``t_max`` (with
    ``prune_lat``: by ``lat_B`` of the stop and rides left) whenever the
    trip's times can change a price — the new leg can start a timed transfer
    allowance (``net_later``) or ends one that is still running (its previous
    leg's group has timed rules). A later trip starts the allowance later, so
    it can be cheaper downstream although it arrives later. Where no time limit
    can be involved the first trip dominates (same state, earlier everywhere).
    With ``every_trip`` the result is the exact Pareto set over (arrival,
    fare, rides) of all journeys arriving by ``t_max``; without it, of the
    journeys boarding the first reachable trip of each pattern (complete when
    no rule has a time limit). ``max_fare`` prunes labels whose paid part
    exceeds it and destination labels above it. With ``prune_lat`` a label
    later than ``lat_A`` / ``lat_B`` is dropped, and one that a target or a
    ``seed`` beats at (``max(arrival, ea_lb)``, ``paid`` + ``lbf_A`` /
    ``lbf_B``, rides + fewest rides still needed).

    Returns ``(n_targets, target rows (arr, fare, rides, ride label, egress
    stop), L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a)``;
    ``n_targets = -1`` when the label pool of ``cap`` overflowed, ``-2`` when
    a bag would have held more than ``bag_cap`` labels.
    """
    S = stop_pattern_offsets.shape[0] - 1
    K1 = max_rounds + 1
    L_arr = np.empty(cap, dtype=np.int64)
    L_fare = np.empty(cap, dtype=np.int64)
    L_paid = np.empty(cap, dtype=np.int64)
    L_st = np.empty((cap, N_FS), dtype=np.int64)
    L_kind = np.empty(cap, dtype=np.int8)
    L_parent = np.empty(cap, dtype=np.int32)
    L_stop = np.empty(cap, dtype=np.int32)
    L_p = np.empty(cap, dtype=np.int32)
    L_c = np.empty(cap, dtype=np.int32)
    L_slot = np.empty(cap, dtype=np.int8)
    L_b = np.empty(cap, dtype=np.int32)
    L_a = np.empty(cap, dtype=np.int32)
    next_ = np.empty(cap, dtype=np.int32)
    max_n = 1
    for p in range(pattern_n_trips.shape[0]):
        max_n = max(max_n, pattern_n_trips[p])
    cand_c = np.empty(3 * max_n, dtype=np.int64)
    cand_slot = np.empty(3 * max_n, dtype=np.int64)
    cand_d = np.empty(3 * max_n, dtype=np.int64)
    tr_head = np.full(3 * max_n, -1, dtype=np.int64)  # time-dependent fares: route-bag entries per trip
    ride_heads = np.full((K1, S), -1, dtype=np.int32)
    ready_heads = np.full((K1, S), -1, dtype=np.int32)
    TG = 1 << 14
    tgt = np.empty((TG, 5), dtype=np.int64)
    n_tgt = 0
    n_lab = 0
    marked = np.zeros(S, dtype=np.int32)
    is_marked = np.zeros(S, dtype=np.bool_)
    n_marked = 0
    improved = np.zeros(S, dtype=np.int32)
    is_improved = np.zeros(S, dtype=np.bool_)
    first_pos = np.full(pattern_n_trips.shape[0], -1, dtype=np.int32)
    queue = np.zeros(pattern_n_trips.shape[0], dtype=np.int32)
    tgt_last = np.full(pattern_n_trips.shape[0], -1, dtype=np.int64)
    for g in range(S):
        if egress_s[g] < 0:
            continue
        for e in range(stop_pattern_offsets[g], stop_pattern_offsets[g + 1]):
            p = stop_patterns[e]
            pos = stop_pattern_pos[e]
            if pattern_dropoff[pattern_stop_offsets[p] + pos] != NO_PICKUP and pos > tgt_last[p]:
                tgt_last[p] = pos
    join = ft[7]
    RB = 256
    rb_c = np.empty(RB, dtype=np.int64)
    rb_slot = np.empty(RB, dtype=np.int64)
    rb_dep = np.empty(RB, dtype=np.int64)
    rb_paid = np.empty(RB, dtype=np.int64)
    rb_parent = np.empty(RB, dtype=np.int64)
    rb_board = np.empty(RB, dtype=np.int64)
    rb_st = np.empty((RB, N_FS), dtype=np.int64)
    rb_tnext = np.empty(RB, dtype=np.int64)
    rb_dead = np.empty(RB, dtype=np.bool_)
    st = np.empty(N_FS, dtype=np.int64)
    ost = L_st[0]  # placeholder view, reassigned per label

    for i in range(access_stops.shape[0]):
        s = access_stops[i]
        for j in range(N_FS):
            st[j] = -1
        r0 = t_dep + access_s[i]
        if prune_lat and r0 > lat_B[K1 - 1, s]:
            continue
        l = _fare_insert(ready_heads, 0, s, next_, L_arr, L_fare, L_paid, L_st, r0, np.int64(0), np.int64(0), st,
                         n_lab, cap, bag_cap)
        if l <= -2:
            return l + 1, tgt, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
        if l >= 0:
            n_lab += 1
            L_kind[l] = LBL_ACCESS
            L_parent[l] = -1
            L_stop[l] = s
            if not is_marked[s]:
                is_marked[s] = True
                marked[n_marked] = s
                n_marked += 1

    for k in range(1, K1):
        if n_marked == 0:
            break
        n_queue = _queue_marked(marked, n_marked, is_marked, stop_pattern_offsets, stop_patterns, stop_pattern_pos,
                                pattern_ok, tgt_last, k == K1 - 1, first_pos, queue)
        n_marked = 0
        n_improved = 0
        for qi in range(n_queue):
            p = queue[qi]
            start = first_pos[p]
            first_pos[p] = -1
            so = pattern_stop_offsets[p]
            n_pos = pattern_stop_offsets[p + 1] - so
            n = pattern_n_trips[p]
            tb = pattern_time_offsets[p]
            net = pattern_net[p]
            n_rb = 0
            end = n_pos if k < K1 - 1 else tgt_last[p] + 1
            for pos in range(start, end):
                s = pattern_stops[so + pos]
                # alight every route-bag entry here
                if n_rb > 0 and pattern_dropoff[so + pos] != NO_PICKUP and stop_ok[s]:
                    ta = stop_area[s]
                    for r in range(n_rb):
                        if rb_dead[r]:
                            continue
                        raw = pattern_arr[tb + pos * n + rb_c[r]]
                        if raw >= SKIP:
                            continue
                        a = raw + pattern_shift[p, rb_slot[r]]
                        if a > t_max or (prune_lat and a > lat_A[K1 - 1 - k, s]):
                            continue
                        dist = (np.float64(pattern_stop_dist_m[so + pos])
                                - np.float64(pattern_stop_dist_m[so + rb_board[r]]))
                        dist = np.round(dist) if dist > 0 else 0.0
                        for j in range(N_FS):
                            st[j] = rb_st[r, j]
                        charge, g, chain = _fare_leg(st[FS_ONET], st[FS_OFROM], ta, dist, st[FS_ODEP], a,
                                                     st[FS_PG], st[FS_PDEP], st[FS_PARR], st[FS_PCHAIN], ft)
                        fare = rb_paid[r] + charge
                        st[FS_OARR] = a
                        st[FS_OGROUP] = g
                        st[FS_OCHAIN] = chain
                        paid = _canon_label(st, fare, rb_paid[r], net_joins, group_out, timed)
                        if timed:
                            _expire(st, a, group_lim, group_untimed)
                        if max_fare >= 0 and paid > max_fare:
                            continue
                        if prune_lat:
                            # every journey from here arrives by EA at the earliest, with at least the rides and
                            # the fare still needed (lower bounds)
                            jl = K1 - 1 - k
                            if lbf_A[jl, s] >= INF or (max_fare >= 0 and paid + lbf_A[jl, s] > max_fare):
                                continue
                            if _beaten(tgt, n_tgt, seed, max(a, ea_lb), paid + lbf_A[jl, s],
                                       k + _min_rides(lbf_A, s)):
                                continue
                        elif _beaten(tgt, n_tgt, seed, a, paid, k):
                            continue
                        l = _fare_insert(ride_heads, k, s, next_, L_arr, L_fare, L_paid, L_st, a, fare, paid, st,
                                         n_lab, cap, bag_cap)
                        if l <= -2:
                            return l + 1, tgt, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
                        if l >= 0:
                            n_lab += 1
                            L_kind[l] = LBL_RIDE
                            L_parent[l] = rb_parent[r]
                            L_stop[l] = s
                            L_p[l] = p
                            L_c[l] = rb_c[r]
                            L_slot[l] = rb_slot[r]
                            L_b[l] = rb_board[r]
                            L_a[l] = pos
                            if not is_improved[s]:
                                is_improved[s] = True
                                improved[n_improved] = s
                                n_improved += 1
                # board with the labels of the previous round
                if pattern_pickup[so + pos] != NO_PICKUP and stop_ok[s]:
                    for r in range(n_rb):
                        rb_dep[r] = pattern_dep[tb + pos * n + rb_c[r]] + pattern_shift[p, rb_slot[r]]
                    # the latest boarding here that can still reach the destination by t_max
                    t_board = min(t_max, lat_B[K1 - k, s]) if prune_lat else t_max
                    l = ready_heads[k - 1, s]
                    while l >= 0:
                        ost = L_st[l]
                        ext = ost[FS_OLAST] >= 0 and net >= 0 and join[ost[FS_OLAST], net]
                        if ext:
                            # the ride extends the open fare leg (fare_leg_join_rules)
                            for j in range(N_FS):
                                st[j] = ost[j]
                            st[FS_OLAST] = net
                            paid = L_paid[l]
                        else:
                            # the open leg is closed: it becomes the previous leg of a new one
                            st[FS_PG] = ost[FS_OGROUP]
                            st[FS_PDEP] = ost[FS_ODEP]
                            st[FS_PARR] = ost[FS_OARR]
                            st[FS_PCHAIN] = ost[FS_OCHAIN]
                            st[FS_ONET] = net
                            st[FS_OLAST] = net
                            st[FS_OFROM] = stop_area[s]
                            paid = L_fare[l]
                        st[FS_OARR] = -1
                        st[FS_OGROUP] = -1
                        st[FS_OCHAIN] = -1
                        if st[FS_PG] >= 0 and not group_out[st[FS_PG]]:
                            st[FS_PG] = -1
                        if st[FS_PG] < 0:
                            st[FS_PDEP] = -1
                            st[FS_PARR] = -1
                            st[FS_PCHAIN] = -1
                        # later trips can matter only when a time limit is involved: the leg starts a timed
                        # allowance, or a running one (its previous leg's) ends on it
                        n_cand = 0
                        if every_trip and ((st[FS_ONET] >= 0 and net_later[st[FS_ONET]])
                                           or (st[FS_PG] >= 0 and group_lim[st[FS_PG]] >= 0
                                               and st[FS_PDEP] != EXPIRED)):
                            n_cand = _trips_between(p, pos, L_arr[l], t_board, pattern_time_offsets, pattern_n_trips,
                                                    pattern_dep, pattern_shift, trip_slots, cand_c, cand_slot, cand_d)
                        else:
                            c, slot, d = _earliest_trip(p, pos, L_arr[l], pattern_time_offsets, pattern_n_trips,
                                                        pattern_trip_offsets, pattern_dep, pattern_shift, trip_slots)
                            if c >= 0 and d <= t_board:
                                cand_c[0] = c
                                cand_slot[0] = slot
                                cand_d[0] = d
                                n_cand = 1
                        pg0 = st[FS_PG]
                        pdep0 = st[FS_PDEP]
                        parr0 = st[FS_PARR]
                        pchain0 = st[FS_PCHAIN]
                        for ci in range(n_cand):
                            c = cand_c[ci]
                            slot = cand_slot[ci]
                            d = cand_d[ci]
                            if not ext:
                                st[FS_ODEP] = d
                                st[FS_PG] = pg0
                                st[FS_PDEP] = pdep0
                                st[FS_PARR] = parr0
                                st[FS_PCHAIN] = pchain0
                                if timed and st[FS_PG] >= 0 and group_lim[st[FS_PG]] >= 0 \
                                        and st[FS_PDEP] != EXPIRED \
                                        and max(st[FS_PDEP], st[FS_PARR]) + group_lim[st[FS_PG]] < d:
                                    # the previous leg's allowance has run out before this trip leaves
                                    if group_untimed[st[FS_PG]]:
                                        st[FS_PDEP] = EXPIRED
                                        st[FS_PARR] = EXPIRED
                                    else:
                                        st[FS_PG] = -1
                                        st[FS_PDEP] = -1
                                        st[FS_PARR] = -1
                                        st[FS_PCHAIN] = -1
                                if timed and st[FS_PG] >= 0 and st[FS_PDEP] != EXPIRED:
                                    _settle_allowance(st, d, ft)
                            if not timed:
                                st[FS_ODEP] = -1
                                st[FS_PDEP] = -1
                                st[FS_PARR] = -1
                            # an entry on an earlier (or the same) trip with the same state and no more paid
                            # prices every stop ahead no higher (when fares depend on times: the same trip, as a
                            # later arrival can start an allowance later; entries are then listed per trip)
                            dom = False
                            key = slot * n + c
                            if timed:
                                r = tr_head[key]
                                while r >= 0:
                                    if not rb_dead[r] and rb_paid[r] <= paid and _same_state(rb_st[r], st):
                                        dom = True
                                        break
                                    r = rb_tnext[r]
                            else:
                                for r in range(n_rb):
                                    if rb_paid[r] <= paid and rb_dep[r] <= d and _same_state(rb_st[r], st):
                                        dom = True
                                        break
                            if not dom:
                                if timed:
                                    r = tr_head[key]
                                    while r >= 0:
                                        if paid <= rb_paid[r] and _same_state(rb_st[r], st):
                                            rb_dead[r] = True
                                        r = rb_tnext[r]
                                else:
                                    keep = 0
                                    for r in range(n_rb):
                                        if not (paid <= rb_paid[r] and d <= rb_dep[r] and _same_state(rb_st[r], st)):
                                            rb_c[keep] = rb_c[r]
                                            rb_slot[keep] = rb_slot[r]
                                            rb_dep[keep] = rb_dep[r]
                                            rb_paid[keep] = rb_paid[r]
                                            rb_parent[keep] = rb_parent[r]
                                            rb_board[keep] = rb_board[r]
                                            for j in range(N_FS):
                                                rb_st[keep, j] = rb_st[r, j]
                                            keep += 1
                                    n_rb = keep
                                if n_rb == rb_c.shape[0]:
                                    # grow the route bag (never drop an entry: that would lose journeys)
                                    m = 2 * n_rb
                                    rb_c = _grow(rb_c, m)
                                    rb_slot = _grow(rb_slot, m)
                                    rb_dep = _grow(rb_dep, m)
                                    rb_paid = _grow(rb_paid, m)
                                    rb_parent = _grow(rb_parent, m)
                                    rb_board = _grow(rb_board, m)
                                    rb_tnext = _grow(rb_tnext, m)
                                    rb_dead = _grow(rb_dead, m)
                                    big = np.empty((m, N_FS), dtype=np.int64)
                                    big[:n_rb] = rb_st[:n_rb]
                                    rb_st = big
                                rb_dead[n_rb] = False
                                if timed:
                                    rb_tnext[n_rb] = tr_head[key]
                                    tr_head[key] = n_rb
                                rb_c[n_rb] = c
                                rb_slot[n_rb] = slot
                                rb_dep[n_rb] = d
                                rb_paid[n_rb] = paid
                                rb_parent[n_rb] = l
                                rb_board[n_rb] = pos
                                for j in range(N_FS):
                                    rb_st[n_rb, j] = st[j]
                                n_rb += 1
                        l = next_[l]
            if timed:
                for r in range(n_rb):
                    tr_head[rb_slot[r] * n + rb_c[r]] = -1
        # destination
        for i in range(n_improved):
            u = improved[i]
            if egress_s[u] < 0:
                continue
            l = ride_heads[k, u]
            while l >= 0:
                ta = L_arr[l] + egress_s[u]
                f = L_fare[l]
                if (max_fare < 0 or f <= max_fare) and ta <= t_max:
                    if not _beaten(tgt, n_tgt, seed, ta, f, k) and n_tgt < TG:
                        tgt[n_tgt, 0] = ta
                        tgt[n_tgt, 1] = f
                        tgt[n_tgt, 2] = k
                        tgt[n_tgt, 3] = l
                        tgt[n_tgt, 4] = u
                        n_tgt += 1
                l = next_[l]
        if k == K1 - 1:
            for i in range(n_improved):
                is_improved[improved[i]] = False
            break
        # transfers: change in place or one footpath; the fare state travels with the label
        for i in range(n_improved):
            u = improved[i]
            is_improved[u] = False
            l = ride_heads[k, u]
            while l >= 0:
                a = L_arr[l]
                nxt_l = next_[l]
                for e in range(footpath_offsets[u] - 1, footpath_offsets[u + 1]):
                    if e < footpath_offsets[u]:
                        v = u
                        if stop_change_s[u] < 0:
                            continue
                        ra = a + stop_change_s[u]
                    else:
                        if footpath_change_s[e] < 0:
                            continue
                        v = footpath_to[e]
                        ra = a + footpath_change_s[e]
                    if prune_lat:
                        jl = K1 - 1 - k
                        if lbf_B[jl, v] >= INF or (max_fare >= 0 and L_paid[l] + lbf_B[jl, v] > max_fare):
                            continue
                        if _beaten(tgt, n_tgt, seed, max(ra, ea_lb), L_paid[l] + lbf_B[jl, v],
                                   k + _min_rides(lbf_B, v)):
                            continue
                    elif _beaten(tgt, n_tgt, seed, ra, L_paid[l], k):
                        continue
                    if ra > t_max or (prune_lat and ra > lat_B[K1 - 1 - k, v]):
                        continue
                    for j in range(N_FS):
                        st[j] = L_st[l, j]
                    if timed:
                        _expire(st, ra, group_lim, group_untimed)
                    nl = _fare_insert(ready_heads, k, v, next_, L_arr, L_fare, L_paid, L_st, ra, L_fare[l], L_paid[l],
                                      st, n_lab, cap, bag_cap)
                    if nl <= -2:
                        return nl + 1, tgt, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
                    if nl >= 0:
                        n_lab += 1
                        L_kind[nl] = LBL_TRANSFER
                        L_parent[nl] = l
                        L_stop[nl] = v
                        if not is_marked[v]:
                            is_marked[v] = True
                            marked[n_marked] = v
                            n_marked += 1
                l = nxt_l
    return n_tgt, tgt, L_kind, L_parent, L_stop, L_p, L_c, L_slot, L_b, L_a
