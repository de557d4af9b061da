"""False-accept / false-reject rates of a face encoder over a labelled photo set.

Input: a CSV with at least the columns ``file`` (path relative to the image
root) and ``person`` (identity label), such as ``shared/data/faces/identities.csv``.
Each usable image is encoded once; every pair of images forms a *genuine*
pair (same person) or an *impostor* pair (different people). For each
threshold ``t`` (match when ``distance < t``, as in `face.verify`):

- FAR(t) = impostor pairs with distance < t / impostor pairs (false accepts);
- FRR(t) = genuine pairs with distance >= t / genuine pairs (false rejects).

Images whose label is empty, starts with ``unknown`` or joins several people
with ``+`` (group photos) take no part; images that fail to encode (no face,
several faces, undecodable) are reported in ``skipped``.

Recommended threshold (the rule, `recommend_threshold`): the *largest*
threshold ``t`` of the grid whose FAR at ``t + margin`` is at most ``max_far``
(defaults: no false accept observed, margin 0.01). At a gate a false accept
lets a stranger ride on someone else's ticket while a false reject sends a
passenger to the staffed lane, so FAR is the constraint and FRR is what we
minimise under it. If even the
smallest threshold exceeds ``max_far``, the smallest threshold is returned.
The equal-error rate is reported for comparison with the literature.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ticketing.credentials.face import DlibFaceEncoder, FaceEncoder, FaceImageError
from ticketing.errors import TicketingError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CalibrationReport",
    "InvalidLabels",
    "PairDistance",
    "SkippedImage",
    "ThresholdRow",
    "calibrate",
    "error_rates",
    "recommend_threshold",
]

#: 0.35, 0.36, ..., 0.65: around dlib's documented 0.6 and well below it.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.35 + 0.01 * i, 2) for i in range(31))


class InvalidLabels(TicketingError):
    code = "invalid_labels"
    status = 422


@dataclass(frozen=True)
class ThresholdRow:
    """Error rates at one threshold; rates are fractions in [0, 1] (NaN with no pairs)."""

    threshold: float
    far: float
    frr: float
    false_accepts: int
    false_rejects: int
    genuine_pairs: int
    impostor_pairs: int


@dataclass(frozen=True)
class SkippedImage:
    file: str
    person: str
    code: str
    message: str


@dataclass(frozen=True)
class PairDistance:
    file_a: str
    file_b: str
    person_a: str
    person_b: str
    distance: float


@dataclass
class CalibrationReport:
    """Everything ``maas faces calibrate`` prints; `to_text` and `to_dict` render it."""

    model_version: str
    images_encoded: int
    people: int
    genuine_pairs: int
    impostor_pairs: int
    rows: list[ThresholdRow]
    recommended: ThresholdRow
    max_far: float
    margin: float
    eer: float
    eer_threshold: float
    skipped: list[SkippedImage] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    #: The closest impostor pairs and the farthest genuine pairs (the errors to look at first).
    closest_impostors: list[PairDistance] = field(default_factory=list)
    farthest_genuine: list[PairDistance] = field(default_factory=list)
    #: Subset name -> rows over the pairs whose two people are both in the subset.
    subsets: dict[str, list[ThresholdRow]] = field(default_factory=dict)
    #: Agreement with reference distances (``pairs_csv``): pairs compared, mean and max absolute difference.
    reference: dict[str, float] | None = None
    #: Per-image embeddings, ``file -> float32 (128,)`` (not rendered; for reuse by callers and tests).
    embeddings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def rule(self) -> str:
        return (f"largest threshold t with FAR(t + {self.margin:g}) <= {self.max_far:.2%} "
                "(match when distance < threshold): FRR minimised under a FAR bound with a safety margin")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "images_encoded": self.images_encoded,
            "people": self.people,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "rule": self.rule,
            "max_far": self.max_far,
            "margin": self.margin,
            "recommended": asdict(self.recommended),
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "rows": [asdict(r) for r in self.rows],
            "subsets": {name: [asdict(r) for r in rows] for name, rows in self.subsets.items()},
            "skipped": [asdict(s) for s in self.skipped],
            "unlabelled": list(self.unlabelled),
            "closest_impostors": [asdict(p) for p in self.closest_impostors],
            "farthest_genuine": [asdict(p) for p in self.farthest_genuine],
            "reference": self.reference,
        }

    def to_text(self) -> str:
        lines = [
            f"model: {self.model_version}",
            f"images encoded: {self.images_encoded} ({self.people} people); "
            f"skipped: {len(self.skipped)}; unlabelled: {len(self.unlabelled)}",
            f"pairs: {self.genuine_pairs} genuine, {self.impostor_pairs} impostor",
            "",
            _table(self.rows),
        ]
        for name, rows in self.subsets.items():
            lines += ["", f"subset {name}:", _table(rows)]
        rec = self.recommended
        lines += [
            "",
            f"recommended threshold: {rec.threshold:.2f}  (FAR {rec.far:.2%}, FRR {rec.frr:.2%}; rule: {self.rule})",
            f"equal error rate: {self.eer:.2%} at {self.eer_threshold:.2f}",
        ]
        if self.reference is not None:
            lines.append(f"vs reference distances: {int(self.reference['pairs'])} pairs, "
                         f"mean |diff| {self.reference['mean_abs_diff']:.4f}, "
                         f"max |diff| {self.reference['max_abs_diff']:.4f}")
        if self.closest_impostors:
            lines += ["", "closest impostor pairs:"]
            lines += [f"  {p.distance:.4f}  {p.file_a} ({p.person_a})  {p.file_b} ({p.person_b})"
                      for p in self.closest_impostors]
        if self.farthest_genuine:
            lines += ["", "farthest genuine pairs:"]
            lines += [f"  {p.distance:.4f}  {p.file_a}  {p.file_b} ({p.person_a})" for p in self.farthest_genuine]
        if self.skipped:
            lines += ["", "skipped images:"]
            lines += [f"  {s.file} ({s.person}): {s.code}" for s in self.skipped]
        return "\n".join(lines)


def _table(rows: Sequence[ThresholdRow]) -> str:
    header = ("threshold", "FAR", "FRR", "false acc", "false rej", "genuine", "impostor")
    body = [(f"{r.threshold:.2f}", _pct(r.far), _pct(r.frr), str(r.false_accepts), str(r.false_rejects),
             str(r.genuine_pairs), str(r.impostor_pairs)) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *(fmt(b) for b in body)])


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{x:.2%}"


def error_rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: Sequence[float]) -> list[ThresholdRow]:
    """FAR/FRR per threshold from the two distance samples (1-d float arrays)."""
    genuine = np.sort(np.asarray(genuine, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    rows = []
    for t in thresholds:
        false_accepts = int(np.searchsorted(impostor, t, side="left"))  # distance < t
        false_rejects = int(genuine.size - np.searchsorted(genuine, t, side="left"))  # distance >= t
        rows.append(ThresholdRow(
            threshold=float(t),
            far=false_accepts / impostor.size if impostor.size else float("nan"),
            frr=false_rejects / genuine.size if genuine.size else float("nan"),
            false_accepts=false_accepts, false_rejects=false_rejects,
            genuine_pairs=int(genuine.size), impostor_pairs=int(impostor.size),
        ))
    return rows


def recommend_threshold(genuine: np.ndarray, impostor: np.ndarray, thresholds: Sequence[float], *,
                        max_far: float = 0.0, margin: float = 0.01) -> ThresholdRow:
    """The largest threshold ``t`` of the grid whose FAR at ``t + margin`` is at most ``max_far``.

    The margin keeps the recommendation clear of the closest impostor pair:
    the same photo's distance moves by a few hundredths with preprocessing
    (resizing, JPEG re-encoding by the client), so a threshold that misses an
    impostor pair by 0.0001 is not a threshold without false accepts. If no
    threshold qualifies, the smallest one is returned. Returns the row at ``t``.
    """
    if not thresholds:
        raise ValueError("no thresholds")
    ordered = sorted(float(t) for t in thresholds)
    rows = error_rates(genuine, impostor, ordered)
    shifted = error_rates(genuine, impostor, [t + margin for t in ordered])
    within = [row for row, guard in zip(rows, shifted, strict=True) if not np.isnan(guard.far) and guard.far <= max_far]
    return within[-1] if within else rows[0]


def _equal_error(rows: Sequence[ThresholdRow]) -> tuple[float, float]:
    valid = [r for r in rows if not (np.isnan(r.far) or np.isnan(r.frr))]
    if not valid:
        return float("nan"), float("nan")
    best = min(valid, key=lambda r: (abs(r.far - r.frr), r.threshold))
    return (best.far + best.frr) / 2, best.threshold


def _read_labels(labels_csv: Path) -> list[tuple[str, str]]:
    try:
        with open(labels_csv, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            if not {"file", "person"} <= columns:
                raise InvalidLabels(f"{labels_csv} needs the columns 'file' and 'person'",
                                    details={"columns": sorted(columns)})
            return [((row["file"] or "").strip(), (row["person"] or "").strip()) for row in reader]
    except OSError as exc:
        raise InvalidLabels(f"cannot read {labels_csv}: {exc.strerror}") from exc


def _is_unlabelled(person: str) -> bool:
    return not person or person.lower().startswith("unknown") or "+" in person


def _read_reference(pairs_csv: Path) -> dict[frozenset[str], float]:
    with open(pairs_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        distance_column = next((c for c in (reader.fieldnames or ()) if c not in ("file_a", "file_b", "same_person")),
                               None)
        if distance_column is None or not {"file_a", "file_b"} <= set(reader.fieldnames or ()):
            raise InvalidLabels(f"{pairs_csv} needs the columns file_a, file_b and a distance column")
        return {frozenset((row["file_a"], row["file_b"])): float(row[distance_column]) for row in reader}


def calibrate(labels_csv: Path, image_root: Path, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
              encoder: FaceEncoder | None = None, *, max_far: float = 0.0, margin: float = 0.01,
              subsets: Mapping[str, Collection[str]] | None = None, pairs_csv: Path | None = None,
              worst: int = 5, progress: Callable[[str], None] | None = None) -> CalibrationReport:
    """Measures FAR/FRR of ``encoder`` over the labelled photos.

    Parameters
    ----------
    labels_csv
        CSV with columns ``file`` (relative to ``image_root``) and ``person``.
    thresholds
        Distances to tabulate (encoder units; dlib: Euclidean).
    encoder
        Defaults to `DlibFaceEncoder` as used at the gate, except that WebP is
        also decoded (a few staged photos are WebP; the model sees the same pixels).
    max_far, margin
        The recommendation rule, see `recommend_threshold` (``max_far`` is a
        fraction; 0 = no observed false accept; ``margin`` in distance units).
    subsets
        Optional name -> people: extra tables over pairs within each subset
        (e.g. the East Asian people of the set).
    pairs_csv
        Optional reference distances (``file_a, file_b, ..., distance``) to
        report how far this pipeline is from them.
    progress
        Called with each file name before it is encoded.
    """
    labels_csv, image_root = Path(labels_csv), Path(image_root)
    if not thresholds:
        raise ValueError("thresholds must not be empty")
    if encoder is None:
        encoder = DlibFaceEncoder(allowed_formats=("JPEG", "PNG", "WEBP"))
    entries = _read_labels(labels_csv)

    embeddings: dict[str, np.ndarray] = {}
    people: dict[str, str] = {}
    skipped: list[SkippedImage] = []
    unlabelled: list[str] = []
    for file, person in entries:
        if _is_unlabelled(person):
            unlabelled.append(file)
            continue
        if file in embeddings:
            continue
        if progress is not None:
            progress(file)
        path = image_root / file
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append(SkippedImage(file, person, "missing_file", str(exc.strerror or exc)))
            continue
        try:
            embeddings[file] = encoder.encode(data)
        except FaceImageError as exc:
            skipped.append(SkippedImage(file, person, exc.code, exc.message))
            continue
        people[file] = person

    files = list(embeddings)
    genuine: list[PairDistance] = []
    impostor: list[PairDistance] = []
    for a, b in itertools.combinations(files, 2):
        pair = PairDistance(a, b, people[a], people[b], encoder.distance(embeddings[a], embeddings[b]))
        (genuine if people[a] == people[b] else impostor).append(pair)

    def distances(pairs: Sequence[PairDistance]) -> np.ndarray:
        return np.array([p.distance for p in pairs], dtype=np.float64)

    rows = error_rates(distances(genuine), distances(impostor), thresholds)
    eer, eer_threshold = _equal_error(rows)
    subset_rows = {}
    for name, members in (subsets or {}).items():
        keep = set(members)
        subset_rows[name] = error_rates(
            distances([p for p in genuine if p.person_a in keep]),
            distances([p for p in impostor if p.person_a in keep and p.person_b in keep]), thresholds)

    reference = None
    if pairs_csv is not None:
        ref = _read_reference(Path(pairs_csv))
        diffs = [abs(p.distance - ref[key]) for p in genuine + impostor
                 if (key := frozenset((p.file_a, p.file_b))) in ref]
        reference = {"pairs": float(len(diffs)),
                     "mean_abs_diff": float(np.mean(diffs)) if diffs else float("nan"),
                     "max_abs_diff": float(np.max(diffs)) if diffs else float("nan")}

    return CalibrationReport(
        model_version=encoder.model_version,
        images_encoded=len(files),
        people=len(set(people.values())),
        genuine_pairs=len(genuine),
        impostor_pairs=len(impostor),
        rows=rows,
        recommended=recommend_threshold(distances(genuine), distances(impostor), thresholds, max_far=max_far,
                                        margin=margin),
        max_far=max_far,
        margin=margin,
        eer=eer,
        eer_threshold=eer_threshold,
        skipped=skipped,
        unlabelled=unlabelled,
        closest_impostors=sorted(impostor, key=lambda p: p.distance)[:worst],
        farthest_genuine=sorted(genuine, key=lambda p: p.distance, reverse=True)[:worst],
        subsets=subset_rows,
        reference=reference,
        embeddings=embeddings,
    )
