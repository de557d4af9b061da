"""FAR/FRR calibration: the arithmetic on synthetic distances, then a real run on a subset of the photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ticketing.credentials.calibration import (
    DEFAULT_THRESHOLDS,
    CalibrationReport,
    InvalidLabels,
    calibrate,
    error_rates,
    recommend_threshold,
)
from ticketing.credentials.face import DEFAULT_THRESHOLD, FaceEncoder

GENUINE = np.array([0.30, 0.40, 0.50, 0.60])
IMPOSTOR = np.array([0.45, 0.70, 0.80, 0.90, 1.00])


def test_error_rates_count_strictly_below_as_accept() -> None:
    rows = {r.threshold: r for r in error_rates(GENUINE, IMPOSTOR, [0.45, 0.5, 0.65])}
    # at 0.45: the impostor at 0.45 is not accepted (distance < t); genuine 0.50 and 0.60 rejected
    assert (rows[0.45].false_accepts, rows[0.45].false_rejects) == (0, 2)
    assert (rows[0.5].false_accepts, rows[0.5].false_rejects) == (1, 2)
    assert rows[0.5].far == pytest.approx(0.2) and rows[0.5].frr == pytest.approx(0.5)
    assert (rows[0.65].false_accepts, rows[0.65].false_rejects) == (1, 0)
    assert rows[0.65].genuine_pairs == 4 and rows[0.65].impostor_pairs == 5


def test_error_rates_without_pairs_are_nan() -> None:
    (row,) = error_rates(np.array([]), IMPOSTOR, [0.5])
    assert np.isnan(row.frr) and row.false_rejects == 0


def test_recommendation_is_the_largest_threshold_without_false_accepts_with_margin() -> None:
    grid = [0.40, 0.42, 0.44, 0.46, 0.48]
    assert recommend_threshold(GENUINE, IMPOSTOR, grid, margin=0.0).threshold == 0.44  # 0.46 would accept 0.45
    assert recommend_threshold(GENUINE, IMPOSTOR, grid, margin=0.01).threshold == 0.44
    assert recommend_threshold(GENUINE, IMPOSTOR, grid, margin=0.02).threshold == 0.42
    assert recommend_threshold(GENUINE, IMPOSTOR, [0.9, 1.0], margin=0.0).threshold == 0.9  # none qualifies
    assert recommend_threshold(GENUINE, IMPOSTOR, [0.5, 0.9], max_far=0.5, margin=0.0).threshold == 0.5


def _write_labels(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "person", "note"])
        writer.writerows((f, p, "") for f, p in rows)
    return path


SUBSET = [
    ("inspireface/kun.jpg", "kun"),
    ("inspireface/jntm.jpg", "kun"),
    ("inspireface/woman.png", "zy"),
    ("inspireface/woman_search.jpeg", "zy"),
    ("silent_face_anti_spoofing/image_T1.jpg", "sfas_woman"),
    ("face_recognition/obama.jpg", "obama"),
    ("face_recognition/obama2.jpg", "obama"),
    ("face_recognition/biden.jpg", "biden"),
    ("face_recognition/two_people.jpg", "obama+biden"),  # a group label: not used
    ("silent_face_anti_spoofing/image_F1.jpg", "unknown_print"),  # unknown identity: not used
    ("deepface/couple.jpg", "angelina"),  # mislabelled group photo: skipped as multiple_faces
    ("inspireface/nope.jpg", "ghost"),  # missing file: skipped
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path,
           caching_encoder: FaceEncoder) -> CalibrationReport:
    labels = _write_labels(tmp_path_factory.mktemp("cal") / "labels.csv", SUBSET)
    return calibrate(labels, faces_dir, [0.40, DEFAULT_THRESHOLD, 0.50, 0.60], caching_encoder,
                     subsets={"east_asian": ["kun", "zy", "sfas_woman"]}, pairs_csv=faces_dir / "pairs_dlib.csv")


def test_calibration_counts_pairs_and_skips(report: CalibrationReport) -> None:
    assert report.images_encoded == 8 and report.people == 5
    assert report.genuine_pairs == 3  # kun x2, zy x2, obama x2
    assert report.impostor_pairs == 8 * 7 // 2 - 3
    assert sorted(report.unlabelled) == ["face_recognition/two_people.jpg", "silent_face_anti_spoofing/image_F1.jpg"]
    assert {(s.file, s.code) for s in report.skipped} == {("deepface/couple.jpg", "multiple_faces"),
                                                          ("inspireface/nope.jpg", "missing_file")}


def test_calibration_shows_east_asian_false_accepts_at_dlibs_threshold(report: CalibrationReport) -> None:
    rows = {r.threshold: r for r in report.subsets["east_asian"]}
    assert rows[0.60].false_accepts >= 3  # kun-woman, jntm-woman_search, woman_search-T1 (README)
    assert rows[DEFAULT_THRESHOLD].false_accepts == 0 and rows[DEFAULT_THRESHOLD].false_rejects == 0
    overall = {r.threshold: r for r in report.rows}
    assert overall[DEFAULT_THRESHOLD].false_accepts == 0
    assert report.recommended.threshold == DEFAULT_THRESHOLD
    assert report.closest_impostors[0].person_a != report.closest_impostors[0].person_b


def test_calibration_agrees_with_reference_distances(report: CalibrationReport) -> None:
    assert report.reference["pairs"] == 8 * 7 // 2
    assert report.reference["max_abs_diff"] < 0.05


def test_calibration_renders_text_and_json(report: CalibrationReport) -> None:
    text = report.to_text()
    assert "threshold" in text and "FAR" in text and "recommended threshold: 0.42" in text
    assert "subset east_asian" in text and "deepface/couple.jpg" in text
    table_lines = [line for line in text.splitlines() if line.strip().startswith(("0.", "threshold"))]
    assert len({len(line) for line in table_lines[:5]}) == 1  # aligned columns
    data = json.loads(json.dumps(report.to_dict()))
    assert data["recommended"]["threshold"] == DEFAULT_THRESHOLD
    assert [r["threshold"] for r in data["rows"]] == [0.40, DEFAULT_THRESHOLD, 0.50, 0.60]
    assert "largest threshold" in data["rule"]


def test_labels_without_required_columns_are_refused(tmp_path: Path, faces_dir: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("image,name\na.jpg,x\n")
    with pytest.raises(InvalidLabels) as info:
        calibrate(bad, faces_dir, DEFAULT_THRESHOLDS)
    assert info.value.code == "invalid_labels"
    with pytest.raises(InvalidLabels):
        calibrate(tmp_path / "missing.csv", faces_dir, DEFAULT_THRESHOLDS)


@pytest.mark.slow
def test_default_threshold_is_what_the_full_staged_set_recommends(faces_dir: Path,
                                                                   caching_encoder: FaceEncoder) -> None:
    # Guards the measured constant: re-deriving it from all staged photos gives the same value.
    full = calibrate(faces_dir / "identities.csv", faces_dir, DEFAULT_THRESHOLDS, caching_encoder,
                     subsets={"east_asian": ["kun", "zy", "yifei", "sfas_woman"]})
    assert full.recommended.threshold == DEFAULT_THRESHOLD
    assert full.recommended.false_accepts == 0
    assert full.genuine_pairs == 166 and full.images_encoded == 87
    at = {r.threshold: r for r in full.rows}
    assert at[0.60].false_accepts > 0
    east_asian = {r.threshold: r for r in full.subsets["east_asian"]}
    assert east_asian[0.60].far > 0.5 and east_asian[DEFAULT_THRESHOLD].false_accepts == 0
