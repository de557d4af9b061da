"""Finding stops: by name (accent-, case- and script-tolerant, pinyin for Chinese names) and by proximity.

:func:`search_stops` answers over a compiled :class:`~routing.timetable.Timetable`. What a passenger
picks is a *place*: a parent station (``location_type`` 1) or a stop without a station. A platform is
found through its own name or id but reported as its station, which lists its platforms; entrances,
nodes and boarding areas are not searched. The one exception is a platform named by its exact id
(the wallet shows ticket legs' stops by id): it is answered itself, first.

Name matching compares *folded* text on both sides: NFKD-style transliteration of everything that is not
Chinese (``anyascii``: "São" -> "sao", "Małopolska" -> "malopolska", "Straße" -> "strasse"),
case-folded, punctuation turned into spaces; Chinese is converted to simplified (OpenCC ``t2s``) so
that "西九龙" finds "香港西九龍". A name holding Chinese characters also gets its pinyin (``pypinyin``,
phrase-aware, read from the simplified text) and matches a Latin query whose letters run through
consecutive syllables taking a prefix of each: "xijiulong", "xi jiu long", "xjl", "xjiul".

Ranks, best first: an exact id, the whole name, the name's start, a word's start, anywhere in the name,
part of the id, every word of the query starting a word of the name (any order), pinyin at the name's start,
pinyin elsewhere; then shorter names and the name's order. With a location the answer is the places
within the radius nearest first (the rank only breaks ties); ``q`` then filters them.

Everything per-name is computed once per timetable (:func:`stop_index`, cached on the timetable
object, weakly) so that a query is one or two vectorised substring scans (numpy's C ``find``) over the
folded names and ids, a regular-expression scan over the joined pinyin, and a vectorised haversine.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.errors import RoutingError

#: bounds of the query parameters (the HTTP layer and the CLI show the same ones)
MAX_LIMIT = 50
MIN_RADIUS_M, MAX_RADIUS_M = 1.0, 50_000.0
DEFAULT_RADIUS_M = 1_000.0
_EARTH_RADIUS_M = 6_371_008.8
_MAX_PINYIN_LETTERS = 30  # longer Latin queries are not tried as pinyin (the regex backtracks per letter)

# ranks (lower is better)
_ID_EXACT, _EQUAL, _START, _WORD, _ANYWHERE, _ID_PART, _WORDS, _PINYIN_START, _PINYIN = range(9)
_NONE = 99
_MATCH_KIND = {_ID_EXACT: "id", _EQUAL: "name", _START: "name", _WORD: "name", _ANYWHERE: "name", _ID_PART: "id",
               _WORDS: "name", _PINYIN_START: "pinyin", _PINYIN: "pinyin"}


class StopSearchError(RoutingError):
    """The stop search was asked something it cannot answer (``details.parameter`` names what)."""

    code = "invalid_stop_search"
    status = 400


@dataclass(frozen=True)
class StopHit:
    """One place found: a station (with its platforms) or a stop without a station."""

    stop_id: str
    name: str
    lat: float
    lon: float
    station: bool
    platforms: list[dict[str, str]]  #: ``{stop_id, name[, platform_code]}`` of a station's platforms
    match: str | None  #: ``id``, ``name``, ``platform`` (a platform's name or id), ``pinyin``; None: by location only
    distance_m: int | None  #: metres from the given location (great circle), None without one

    def to_dict(self) -> dict[str, Any]:
        out = {"stop_id": self.stop_id, "name": self.name, "lat": self.lat, "lon": self.lon, "station": self.station,
               "platforms": self.platforms, "match": self.match}
        if self.distance_m is not None:
            out["distance_m"] = self.distance_m
        return out


# ---- text folding ---------------------------------------------------------------------------------------

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_NOT_WORD = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")


@functools.lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    return _t2s().convert(text) if _HAN.search(text) else text


def fold(text: str) -> str:
    """Lower-case ASCII words and simplified Chinese characters, separated by single spaces.

    >>> fold("São Paulo – Małopolska Straße"), fold("香港西九龍")
    ('sao paulo malopolska strasse', '香港西九龙')
    """
    from anyascii import anyascii

    text = unicodedata.normalize("NFKC", _simplified(text))
    out = "".join(ch if _HAN.match(ch) else anyascii(ch) for ch in text) if _HAN.search(text) else anyascii(text)
    return _NOT_WORD.sub(" ", out.casefold()).strip()


def pinyin_syllables(text: str) -> str:
    """The pinyin of a name holding Chinese characters, syllables separated by spaces; '' without any.

    Other parts of the name are folded (``fold``) and count as syllables of their own.
    """
    if not _HAN.search(text):
        return ""
    from pypinyin import lazy_pinyin

    parts = lazy_pinyin(unicodedata.normalize("NFKC", _simplified(text)), errors=lambda s: fold(s).split())
    return " ".join(p for part in parts for p in fold(part).split())


def _pinyin_pattern(letters: str) -> re.Pattern[str]:
    """Letters running through consecutive syllables (space-separated), a prefix of each, from a syllable's start."""
    head, rest = re.escape(letters[0]), letters[1:]
    return re.compile(r"(?:^| )" + head + "".join(r"(?:[^ \n]* )?" + re.escape(c) for c in rest), re.MULTILINE)


# ---- the per-timetable index ------------------------------------------------------------------------


class _Lines:
    """Texts joined by newlines for C-speed regex scans; ``owner[i]`` is the key row of line ``i``."""

    def __init__(self, texts: list[str], owner: list[int]) -> None:
        self.text = "\n".join(texts)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if texts else np.zeros(0, np.int64)
        self.owner = np.asarray(owner, dtype=np.int64)

    def hits(self, pattern: re.Pattern[str]) -> tuple[np.ndarray, np.ndarray]:
        """(owners, at_line_start) of the lines the pattern matches (the first match of each line)."""
        pos = np.fromiter((m.start() for m in pattern.finditer(self.text)), dtype=np.int64)
        if pos.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, bool)
        line = np.searchsorted(self.starts, pos, side="right") - 1
        first = np.concatenate(([True], line[1:] != line[:-1]))
        return self.owner[line[first]], pos[first] == self.starts[line[first]]


@dataclass(frozen=True, eq=False)
class StopIndex:
    """What :func:`search_stops` needs of a timetable, computed once (see :func:`stop_index`).

    ``places`` are the stop indices of stations and of stops without a station; every other array is
    indexed by place. Keys are the names and ids a place is found by (its own and its platforms').
    """

    places: np.ndarray  #: (E,) int64 stop index of each place
    place_of_stop: np.ndarray  #: (S,) int64 place a stop is found as (-1: entrances, nodes, ...)
    lat_rad: np.ndarray  #: (E,) float64
    lon_rad: np.ndarray  #: (E,) float64
    name_len: np.ndarray  #: (E,) int64 length of the name (shorter first among equals)
    name_order: np.ndarray  #: (E,) int64 position in name order
    platforms: list[list[int]]  #: per place, the stop indices of its platforms
    key_place: np.ndarray  #: (K,) int64 place of each key, non-decreasing
    key_offsets: np.ndarray  #: (E,) int64 first key of each place: the place's own (its platforms' follow)
    by_id: dict[str, int]  #: case-folded stop id -> stop index (every stop)
    names: np.ndarray  #: (K,) str folded name of each key ('' for a platform named like its station)
    spaced: np.ndarray  #: (K,) str the same with a space before: " " + word finds a word's start
    ids: np.ndarray  #: (K,) str case-folded stop id of each key
    pinyin: _Lines  #: pinyin of the names holding Chinese characters, owner = key


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def stop_index(tt: Any) -> StopIndex:
    """The :class:`StopIndex` of a timetable, built on first use and kept as long as the timetable lives."""
    idx = _INDEXES.get(tt)
    if idx is None:
        with _LOCK:  # one build per timetable even when the first requests arrive together
            idx = _INDEXES.get(tt)
            if idx is None:
                idx = _INDEXES[tt] = _build_index(tt)
    return idx


def _build_index(tt: Any) -> StopIndex:
    ids = [str(s) for s in np.asarray(tt.stop_ids).tolist()]
    names = [str(s) for s in np.asarray(tt.stop_names).tolist()]
    loc = np.asarray(tt.stop_location_type).astype(np.int64)
    parent = np.asarray(tt.stop_parent).astype(np.int64)
    n = len(ids)
    is_place = (loc == 1) | ((loc == 0) & (parent < 0))
    places = np.flatnonzero(is_place)
    place_of_stop = np.full(n, -1, dtype=np.int64)
    place_of_stop[places] = np.arange(places.size)
    platform = (loc == 0) & (parent >= 0)
    platform &= np.isin(parent, places)  # a platform whose parent is no station stays unreachable
    plat_idx = np.flatnonzero(platform)
    place_of_stop[plat_idx] = place_of_stop[parent[plat_idx]]
    platforms: list[list[int]] = [[] for _ in range(places.size)]
    for s in sorted(plat_idx.tolist(), key=lambda s: ids[s]):
        platforms[int(place_of_stop[s])].append(s)

    key_place: list[int] = []
    folded: list[str] = []
    id_texts: list[str] = []
    pinyin_texts: list[str] = []
    pinyin_owner: list[int] = []
    fold_cache: dict[str, tuple[str, str]] = {}
    for e, s in enumerate(places.tolist()):
        seen: set[str] = set()
        for k_stop in [s, *platforms[e]]:
            key = len(key_place)
            key_place.append(e)
            id_texts.append(ids[k_stop].casefold())
            name = names[k_stop]
            if name in seen:  # a platform named like its station adds nothing but its id
                folded.append("")
                continue
            seen.add(name)
            if name not in fold_cache:
                fold_cache[name] = (fold(name), pinyin_syllables(name))
            f, py = fold_cache[name]
            folded.append(f)
            if py:
                pinyin_texts.append(py)
                pinyin_owner.append(key)
    own = np.asarray(names, dtype=object)[places]
    order = np.empty(places.size, dtype=np.int64)
    order[np.argsort(own.astype(str), kind="stable")] = np.arange(places.size)
    lat = np.asarray(tt.stop_lat, dtype=np.float64)[places]
    lon = np.asarray(tt.stop_lon, dtype=np.float64)[places]
    return StopIndex(
        places=places, place_of_stop=place_of_stop, lat_rad=np.radians(lat), lon_rad=np.radians(lon),
        name_len=np.fromiter((len(x) for x in own), dtype=np.int64, count=places.size), name_order=order,
        platforms=platforms, key_place=np.asarray(key_place, dtype=np.int64),
        key_offsets=np.searchsorted(key_place, np.arange(places.size)),
        by_id={i.casefold(): s for s, i in enumerate(ids)},
        names=np.asarray(folded, dtype=str), spaced=np.char.add(" ", np.asarray(folded, dtype=str)),
        ids=np.asarray(id_texts, dtype=str), pinyin=_Lines(pinyin_texts, pinyin_owner))


# ---- the search --------------------------------------------------------------------------------------


def _distances_m(lat_rad: np.ndarray, lon_rad: np.ndarray, near: tuple[float, float]) -> np.ndarray:
    """Great-circle metres (haversine) from ``near`` (degrees) to points given in radians."""
    la, lo = np.radians(near[0]), np.radians(near[1])
    h = (np.sin((lat_rad - la) / 2) ** 2 + np.cos(la) * np.cos(lat_rad) * np.sin((lon_rad - lo) / 2) ** 2)
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _name_ranks(idx: StopIndex, q: str) -> tuple[np.ndarray, np.ndarray]:
    """Per place, the best rank of ``q`` over its keys and whether that key is a platform's."""
    rank = np.full(idx.key_place.size, _NONE, dtype=np.int64)

    needle = fold(q)
    if needle:
        at = np.char.find(idx.spaced, needle)  # 1: the name's start (the space before it is ours)
        hit = np.flatnonzero(at > 0)
        word = np.char.find(idx.spaced[hit], " " + needle) >= 0
        rank[hit] = np.where(idx.names[hit] == needle, _EQUAL,
                             np.where(at[hit] == 1, _START, np.where(word, _WORD, _ANYWHERE)))
        words = needle.split()
        if len(words) > 1:  # every word starts a word of the name, in any order
            every = np.arange(rank.size)
            for w in sorted(set(words), key=len, reverse=True):  # the longest first: fewest rows left
                every = every[np.char.find(idx.spaced[every], " " + w) >= 0]
            rank[every] = np.minimum(rank[every], _WORDS)
        letters = needle.replace(" ", "")
        if idx.pinyin.text and letters.isascii() and letters.isalnum() and len(letters) <= _MAX_PINYIN_LETTERS:
            keys, at_start = idx.pinyin.hits(_pinyin_pattern(letters))
            np.minimum.at(rank, keys, np.where(at_start, _PINYIN_START, _PINYIN))
    raw = q.strip().casefold().replace("\0", "")  # numpy strings end at a NUL: it would match every id
    if raw:
        rank[(np.char.find(idx.ids, raw) >= 0) & (rank > _ID_PART)] = _ID_PART
    best = np.minimum.reduceat(rank, idx.key_offsets) if rank.size else rank
    # a place found only through a platform says so (the place's own key, its first, ranks worse)
    return best, rank[idx.key_offsets] > best


def check_request(q: str | None, *, near: tuple[float, float] | None, radius_m: float, limit: int) -> None:
    """Raises :class:`StopSearchError` for a search :func:`search_stops` cannot answer (before any work)."""
    if q is None and near is None:
        raise StopSearchError("give a name (q) or a location (lat and lon)", details={"parameter": "q"})
    if not 1 <= limit <= MAX_LIMIT:
        raise StopSearchError(f"limit must be between 1 and {MAX_LIMIT}", details={"parameter": "limit"})
    if near is not None:
        lat, lon = near
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise StopSearchError("lat must be within -90..90 and lon within -180..180",
                                  details={"parameter": "lat" if not -90.0 <= lat <= 90.0 else "lon"})
        if not MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
            raise StopSearchError(f"radius_m must be between {MIN_RADIUS_M:g} and {MAX_RADIUS_M:g}",
                                  details={"parameter": "radius_m"})


def search_stops(tt: Any, q: str | None = None, *, near: tuple[float, float] | None = None,
                 radius_m: float = DEFAULT_RADIUS_M, limit: int = 10) -> list[StopHit]:
    """Places matching ``q`` (best first) or, with ``near=(lat, lon)``, within ``radius_m`` (nearest first).

    Raises :class:`StopSearchError` without ``q`` or ``near``, or with a parameter out of bounds.
    A ``q`` that folds to nothing (punctuation only) finds nothing.
    """
    check_request(q, near=near, radius_m=radius_m, limit=limit)
    idx = stop_index(tt)
    exact = idx.by_id.get(q.strip().casefold()) if q is not None else None
    first: list[int] = []  # a platform (or any stop) named by its exact id
    if q is not None:
        rank, via_platform = _name_ranks(idx, q)
        if exact is not None:
            e = int(idx.place_of_stop[exact])
            if e >= 0 and int(idx.places[e]) == exact:
                rank[e], via_platform[e] = _ID_EXACT, False
            elif exact not in idx.places:
                first.append(exact)
                if e >= 0:  # its station is not listed again after it
                    rank[e] = _NONE
    else:
        rank, via_platform = np.zeros(idx.places.size, np.int64), np.zeros(idx.places.size, bool)
    dist = None
    ok = rank < _NONE
    if near is not None:
        dist = _distances_m(idx.lat_rad, idx.lon_rad, near)
        ok &= dist <= radius_m
        first = [s for s in first if _stop_distance_m(tt, s, near) <= radius_m]
    cand = np.flatnonzero(ok)
    keys = (idx.name_order[cand], idx.name_len[cand], rank[cand])
    order = cand[np.lexsort(keys if dist is None else (*keys, dist[cand]))]

    out: list[StopHit] = []
    seen: set[tuple[str, int, int]] = set()
    for s in first:
        out.append(_hit(tt, idx, s, "id", None if near is None else round(_stop_distance_m(tt, s, near))))
        seen.add(_same_place(tt, s))
    for e in order.tolist():
        s = int(idx.places[e])
        key = _same_place(tt, s)  # the same place in two feeds' data: list it once
        if key in seen:
            continue
        seen.add(key)
        if q is None:
            kind = None
        else:
            kind = "platform" if via_platform[e] and rank[e] != _ID_EXACT else _MATCH_KIND[int(rank[e])]
        out.append(_hit(tt, idx, s, kind, None if dist is None else int(round(float(dist[e])))))
        if len(out) >= limit:
            break
    return out[:limit]


def _stop_distance_m(tt: Any, s: int, near: tuple[float, float]) -> float:
    return float(_distances_m(np.radians([float(tt.stop_lat[s])]), np.radians([float(tt.stop_lon[s])]), near)[0])


def _same_place(tt: Any, s: int) -> tuple[str, int, int]:
    return (str(tt.stop_names[s]), round(float(tt.stop_lat[s]) * 1e4), round(float(tt.stop_lon[s]) * 1e4))


def _hit(tt: Any, idx: StopIndex, s: int, match: str | None, distance_m: int | None) -> StopHit:
    codes = getattr(tt, "stop_platform_codes", None)  # not compiled (yet): then platforms carry no code
    e = int(idx.place_of_stop[s])
    station = int(tt.stop_location_type[s]) == 1
    platforms = []
    for p in (idx.platforms[e] if station and e >= 0 and int(idx.places[e]) == s else []):
        item = {"stop_id": str(tt.stop_ids[p]), "name": str(tt.stop_names[p])}
        if codes is not None and str(codes[p]):
            item["platform_code"] = str(codes[p])
        platforms.append(item)
    return StopHit(stop_id=str(tt.stop_ids[s]), name=str(tt.stop_names[s]), lat=float(tt.stop_lat[s]),
                   lon=float(tt.stop_lon[s]), station=station, platforms=platforms, match=match,
                   distance_m=distance_m)
