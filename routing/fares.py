"""A plain-array fare model the fare-aware search kernel understands (no dependency on ticketing).

``routing`` must not import ``ticketing`` (import-linter), so the fare engine
(:mod:`ticketing.fares`) *compiles* its rules into a :class:`FareTables` for one
rider category, one fare medium and the timeframes active at the query time
(``ticketing.fares.tables.fare_tables_for``), and the kernel
(``routing.kernels._mcraptor_fare``) prices partial journeys from these arrays.

Sizes: ``R`` routes, ``S`` stops of the timetable; ``N`` fare networks; ``A``
distinct stop area sets; ``G`` fare leg groups; ``B`` distance bands.

Model (mirrors ``FareEngine.price_legs``; what the compiler cannot express is
listed in :attr:`FareTables.notes`):

* Every ride is on a route of one fare *network* (``route_network``; ``-1`` =
  no fare data: the ride costs :data:`UNPRICED`, so unpriced journeys sort
  last and come back with ``fare: null``). A network belongs to one feed.
* Consecutive rides whose networks ``join[first, next]`` form one *effective
  fare leg* (GTFS ``fare_leg_join_rules.txt``), priced from the first ride's
  network, the area set of its boarding stop and the area set of the last
  ride's alighting stop: ``leg_price[net, from_area, to_area]`` (kind 0) — or,
  for distance-band networks (kind 1, operator fare tables), from the ride's
  distance along the pattern: the first band ``b`` of the network with
  ``distance <= band_up_to_m[b]``.
* Between consecutive effective legs with groups ``g1 -> g2`` a transfer rule
  ``xfer_kind[g1, g2]`` may change the price of the second: 1 = it costs
  ``xfer_amount`` instead (GTFS ``fare_transfer_type`` 0), 2 = it costs
  ``xfer_amount`` plus its own price (type 1), 3 = an interoperator agreement
  takes ``min(xfer_amount, price)`` off it (联程优惠). The rule holds when the
  duration limit is kept (``xfer_limit_s``, ``-1`` = none, measured as GTFS
  ``duration_limit_type`` 0 dep->arr, 1 dep->dep, 2 arr->dep, 3 arr->arr from
  the first effective leg to the second) and, for kinds 1/2, when the chain of
  consecutive transfers it extends stays within ``xfer_count`` (``-1`` = no
  limit; the chain restarts at 0 after a leg no rule applied to).

Money is integer minor units of :attr:`FareTables.currency`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Cost the kernel charges for a ride no fare data covers (so priced journeys dominate unpriced ones).
UNPRICED = 1 << 40

#: ``xfer_kind`` values.
XFER_NONE, XFER_REPLACE, XFER_FEE_PLUS, XFER_DISCOUNT = 0, 1, 2, 3

#: ``network_kind`` values.
NET_AREAS, NET_BANDS = 0, 1


@dataclass(frozen=True, eq=False)
class FareTables:
    """Compiled fare rules for one rider category / fare medium (see the module docstring).

    Arrays (all C-contiguous, read-only by convention):

    route_network : (R,) int32 fare network of each timetable route, -1 = not priced
    network_feed : (N,) int32 timetable feed index of the network
    network_kind : (N,) int8 0 = area table, 1 = distance bands
    network_group : (N,) int32 leg group of a distance-band network's legs, -1 = none
    stop_area : (S,) int32 area-set index of each timetable stop, in ``0..A-1``
    leg_price : (N, A, A) int64 minor units by (network, from area set, to area set), -1 = not priced
    leg_group : (N, A, A) int32 leg group of the matched rule, -1 = none (no transfer rule applies)
    band_offsets : (N+1,) int64 CSR into the band arrays (empty for area networks)
    band_up_to_m : (B,) float64 upper bound of the band in metres (inclusive; inf = none)
    band_price : (B,) int64 minor units (rider category applied), -1 = not sold
    join : (N, N) bool rides of network i then j form one effective leg
    xfer_kind, xfer_amount, xfer_limit_s, xfer_limit_type, xfer_count : (G, G) int8 / int64 / int64 / int8 / int32
    """

    currency: str
    rider_category: str
    fare_media: str | None
    route_network: np.ndarray
    network_feed: np.ndarray
    network_kind: np.ndarray
    network_group: np.ndarray
    stop_area: np.ndarray
    leg_price: np.ndarray
    leg_group: np.ndarray
    band_offsets: np.ndarray
    band_up_to_m: np.ndarray
    band_price: np.ndarray
    join: np.ndarray
    xfer_kind: np.ndarray
    xfer_amount: np.ndarray
    xfer_limit_s: np.ndarray
    xfer_limit_type: np.ndarray
    xfer_count: np.ndarray
    network_ids: tuple[str, ...] = ()  #: ``<feed_id>:<network_id>`` ('' network for routes without one)
    group_ids: tuple[str, ...] = ()  #: ``<feed_id>:<leg_group_id>``
    notes: tuple[str, ...] = ()  #: fare rules the tables do not express (the displayed fare is re-priced anyway)
    meta: dict = field(default_factory=dict)

    @property
    def n_networks(self) -> int:
        return int(self.network_kind.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.xfer_kind.shape[0])

    @property
    def timed(self) -> bool:
        """Does any transfer rule have a duration limit (then fares depend on times)?"""
        return bool((self.xfer_limit_s[self.xfer_kind != XFER_NONE] >= 0).any())

    def validate(self, n_routes: int, n_stops: int) -> None:
        """Raise ``ValueError`` when the shapes do not fit a timetable of ``n_routes`` / ``n_stops``."""
        n, g = self.n_networks, self.n_groups
        a = self.leg_price.shape[1] if self.leg_price.ndim == 3 else 0
        problems = []
        if self.route_network.shape != (n_routes,):
            problems.append(f"route_network has shape {self.route_network.shape}, want ({n_routes},)")
        if self.stop_area.shape != (n_stops,):
            problems.append(f"stop_area has shape {self.stop_area.shape}, want ({n_stops},)")
        if self.leg_price.shape != (n, a, a) or self.leg_group.shape != (n, a, a):
            problems.append("leg_price / leg_group must be (N, A, A)")
        if self.join.shape != (n, n) or self.band_offsets.shape != (n + 1,):
            problems.append("join must be (N, N) and band_offsets (N+1,)")
        for name in ("xfer_kind", "xfer_amount", "xfer_limit_s", "xfer_limit_type", "xfer_count"):
            if getattr(self, name).shape != (g, g):
                problems.append(f"{name} must be (G, G)")
        if n_stops and (self.stop_area.min(initial=0) < 0 or self.stop_area.max(initial=0) >= max(a, 1)):
            problems.append("stop_area out of range")
        if problems:
            raise ValueError("fare tables do not fit the timetable: " + "; ".join(problems))

    def kernel_args(self) -> tuple:
        """The tuple of arrays ``routing.kernels._mcraptor_fare`` takes as ``ft``."""
        return (np.ascontiguousarray(self.network_kind, dtype=np.int8),
                np.ascontiguousarray(self.leg_price, dtype=np.int64),
                np.ascontiguousarray(self.leg_group, dtype=np.int32),
                np.ascontiguousarray(self.network_group, dtype=np.int32),
                np.ascontiguousarray(self.band_offsets, dtype=np.int64),
                np.ascontiguousarray(self.band_up_to_m, dtype=np.float64),
                np.ascontiguousarray(self.band_price, dtype=np.int64),
                np.ascontiguousarray(self.join, dtype=np.bool_),
                np.ascontiguousarray(self.xfer_kind, dtype=np.int8),
                np.ascontiguousarray(self.xfer_amount, dtype=np.int64),
                np.ascontiguousarray(self.xfer_limit_s, dtype=np.int64),
                np.ascontiguousarray(self.xfer_limit_type, dtype=np.int8),
                np.ascontiguousarray(self.xfer_count, dtype=np.int32))


def empty_tables(n_routes: int, n_stops: int, currency: str = "XXX", rider_category: str = "adult") -> FareTables:
    """Tables with no fare data at all (every ride unpriced); a starting point for hand-written tables."""
    return FareTables(
        currency=currency, rider_category=rider_category, fare_media=None,
        route_network=np.full(n_routes, -1, dtype=np.int32), network_feed=np.zeros(0, dtype=np.int32),
        network_kind=np.zeros(0, dtype=np.int8), network_group=np.zeros(0, dtype=np.int32),
        stop_area=np.zeros(n_stops, dtype=np.int32), leg_price=np.full((0, 1, 1), -1, dtype=np.int64),
        leg_group=np.full((0, 1, 1), -1, dtype=np.int32), band_offsets=np.zeros(1, dtype=np.int64),
        band_up_to_m=np.zeros(0, dtype=np.float64), band_price=np.zeros(0, dtype=np.int64),
        join=np.zeros((0, 0), dtype=bool), xfer_kind=np.zeros((0, 0), dtype=np.int8),
        xfer_amount=np.zeros((0, 0), dtype=np.int64), xfer_limit_s=np.zeros((0, 0), dtype=np.int64),
        xfer_limit_type=np.zeros((0, 0), dtype=np.int8), xfer_count=np.zeros((0, 0), dtype=np.int32))
