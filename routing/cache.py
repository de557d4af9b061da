"""On-disk cache of compiled timetables: one ``.npy`` per array, memory-mapped on load.

Layout: ``<cache_dir>/<key>/<field>.npy`` plus ``meta.json``; ``key`` is a
sha256 of the feeds' bytes, their ids, the compile options (with the
footpaths file's bytes) and the code version (``TIMETABLE_VERSION`` plus the
bytes of the compiler's source files, so editing the compiler invalidates old
caches). A cache directory is written under a temporary name and renamed into
place, so a crash mid-write never leaves a half cache behind.

Loading memory-maps every array (``np.load(mmap_mode="r")``): pages are read
on demand and shared between worker processes; string id arrays are stored as
fixed-width unicode so they map too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from routing.timetable import TIMETABLE_VERSION, CompileOptions, Timetable

if TYPE_CHECKING:  # the compiler (pandas, gtfs-kit, scipy) is imported only when a cache misses
    from routing.feeds import FeedSource

_CODE_FILES = ("timetable.py", "feeds.py", "compile.py", "footpaths.py", "cache.py")
_HASH_MEMO = "content-hashes.json"


def _code_version() -> str:
    h = hashlib.sha256(TIMETABLE_VERSION.encode())
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _file_sha256(path: Path, memo: dict) -> str:
    """sha256 of a file's bytes, memoised by (path, size, mtime_ns)."""
    st = path.stat()
    mk = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if mk in memo:
        return memo[mk]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    memo[mk] = h.hexdigest()
    return memo[mk]


def source_hash(source: FeedSource, memo: dict | None = None) -> str:
    """sha256 over a feed's bytes (a zip file, or every file of a folder by name)."""
    memo = {} if memo is None else memo
    p = source.path
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.iterdir() if x.is_file()):
            h.update(f.name.encode() + b"\0" + _file_sha256(f, memo).encode())
        return h.hexdigest()
    return _file_sha256(p, memo)


def cache_key(sources: Sequence[FeedSource], options: CompileOptions, memo: dict | None = None) -> str:
    """The cache directory name for these feeds + options + code."""
    memo = {} if memo is None else memo
    parts = {
        "code": _code_version(),
        "options": options.as_key(),
        "feeds": [[s.feed_id, s.operator_id, source_hash(s, memo), s.agency_operators]
                  + (["in_seat_from_blocks"] if s.in_seat_from_blocks else []) for s in sources],
    }
    if options.footpaths_file is not None:
        parts["footpaths_sha256"] = _file_sha256(Path(options.footpaths_file), memo)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


def save_timetable(tt: Timetable, directory: Path) -> None:
    """Write ``tt`` into ``directory`` atomically (temp dir in the same parent + rename)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=directory.parent))
    try:
        for name in Timetable.array_fields():
            a = np.asarray(getattr(tt, name))
            if a.dtype == object:  # never pickle: store ids as fixed-width unicode
                a = a.astype(str)
            np.save(tmp / f"{name}.npy", a, allow_pickle=False)
        meta = {"first_day_ordinal": tt.first_day_ordinal, "meta": tt.meta}
        (tmp / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
        try:
            os.rename(tmp, directory)
        except OSError:
            if (directory / "meta.json").exists():  # another process won the race: same content
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_timetable(directory: Path) -> Timetable:
    """Memory-map a cached timetable (arrays are read-only ``np.memmap``)."""
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
              for name in Timetable.array_fields()}
    m = dict(meta["meta"])
    m["cache_dir"] = str(directory)
    return Timetable(**arrays, first_day_ordinal=int(meta["first_day_ordinal"]), meta=m)


def load_or_compile(
    sources: Sequence[FeedSource], cache_dir: Path, options: CompileOptions | None = CompileOptions()
) -> tuple[Timetable, bool]:
    """Load the cached timetable of these feeds, compiling (and caching) it when absent.

    ``options=None`` means ``CompileOptions()``. Returns ``(timetable,
    loaded_from_cache)``. Raises :class:`~routing.errors.FeedError` for a broken
    feed (nothing is cached then). A cache hit imports neither pandas nor gtfs-kit.
    """
    if options is None:
        options = CompileOptions()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    memo_path = cache_dir / _HASH_MEMO
    try:
        memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    except (OSError, ValueError):
        memo = {}
    n_memo = len(memo)
    key = cache_key(list(sources), options, memo)
    if len(memo) != n_memo:
        _write_json_atomic(memo_path, memo)
    target = cache_dir / key
    if (target / "meta.json").exists():
        return load_timetable(target), True
    from routing.compile import compile_timetable

    tt = compile_timetable(sources, options)
    save_timetable(tt, target)
    prune_cache(cache_dir, keep=KEEP_ENTRIES, protect=target)
    return load_timetable(target), False


KEEP_ENTRIES = 3
STALE_TMP_S = 3600


def filesystem_now(directory: Path) -> float:
    """The current time on the clock that stamps ``directory``'s files (mtimes), in epoch seconds.

    Ages of files are measured against the clock that wrote them, not the
    process's: a file server's clock may differ from this machine's, and a
    process may run on an injected clock.
    """
    fd, probe = tempfile.mkstemp(prefix=".clock-", dir=directory)
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        os.unlink(probe)


def prune_cache(cache_dir: Path, *, keep: int = KEEP_ENTRIES, protect: Path | None = None) -> list[Path]:
    """Delete all but the ``keep`` newest timetables and temp dirs of crashed writers (> 1 h old).

    Safe while other processes serve an old entry: their memory maps keep the
    unlinked files alive until they close them. Returns the removed paths.
    """
    cache_dir = Path(cache_dir)
    removed: list[Path] = []
    entries = [p for p in cache_dir.iterdir() if p.is_dir()]
    now = filesystem_now(cache_dir)
    for p in entries:
        if p.name.startswith(".tmp-") and now - p.stat().st_mtime > STALE_TMP_S:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    done = sorted((p for p in entries if (p / "meta.json").exists()), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in done[keep:]:
        if protect is not None and p.resolve() == Path(protect).resolve():
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
