"""Deterministic sample image folders: the *source* end of the data flow, made up on demand.

The README demo, the benchmarks and the tests need image folders that behave like real ones
(sizes, formats, compressibility) without downloading anything. Two generators write them::

    digits/                      photos/
        0/00000.png                  class_0/00000.jpg
        0/00010.png                  class_0/00005.jpg
        ...                          class_1/00001.jpg
        9/00009.png                  class_1/00011.png
        .sample-complete             .sample-complete

``make_digits`` draws MNIST-like 28x28 grayscale PNGs from TrueType fonts; ``make_photos``
paints photo-like RGB images (smooth shading, shapes, fine grain) saved mostly as JPEG with
some PNG. Every image is seeded from ``(seed, index)`` alone, so output is byte-identical for
a seed whatever the number of workers. The hidden marker, written first as "incomplete" and
last as "complete", makes a rerun with the same parameters return at once.

Pillow and numpy only: TensorFlow is not imported here.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tfrecord_tools.errors import TFRecordToolsError

from .lifetime import end_with_parent

__all__ = ["SampleError", "make_digits", "make_photos"]

MARKER = ".sample-complete"
_GENERATOR_VERSION = 1  # bump when the pictures change, so old folders are rebuilt
_SAMPLE_FILE = re.compile(r"\d+\.(png|jpg)")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationMono-Regular.ttf",
    "FreeSans.ttf",
    "FreeSerif.ttf",
    "Arial.ttf",
    "arial.ttf",
    "georgia.ttf",
)


class SampleError(TFRecordToolsError):
    """Bad options for a sample folder, or a target folder that holds someone else's files."""


# --- What to make -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Everything that decides the bytes of a sample folder (and so goes in the marker)."""

    kind: str  # "digits" or "photos"
    count: int
    seed: int
    classes: int
    size: tuple[int, int]  # (width, height)
    png_fraction: float
    quality: int

    def __post_init__(self) -> None:
        _check(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0", self.seed)
        _check(_is_int(self.classes) and self.classes >= 1, "classes", "at least 1", self.classes)
        _check(
            _is_int(self.count) and self.count >= self.classes,
            "count",
            f"an integer >= {self.classes}, so that every class folder gets an image",
            self.count,
        )
        _check(
            len(self.size) == 2 and all(_is_int(v) and v >= 16 for v in self.size),
            "size",
            "(width, height), integers >= 16",
            self.size,
        )
        _check(0.0 <= self.png_fraction <= 1.0, "png_fraction", "in [0, 1]", self.png_fraction)
        _check(1 <= self.quality <= 100, "quality", "in [1, 100]", self.quality)

    def marker_text(self, complete: bool) -> str:
        fields = {**asdict(self), "size": list(self.size), "version": _GENERATOR_VERSION}
        return json.dumps({**fields, "complete": complete}, sort_keys=True) + "\n"


@dataclass(frozen=True)
class _Job:
    """One image to write: where, which (index, label) and in what format."""

    relpath: str
    index: int
    label: int
    fmt: str  # "PNG" or "JPEG"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, name: str, expected: str, found: object) -> None:
    if not ok:
        raise SampleError(f"{name} must be {expected}, got {found!r}")


def _class_names(spec: _Spec) -> list[str]:
    if spec.kind == "digits":
        return [str(d) for d in range(spec.classes)]
    width = len(str(spec.classes - 1))
    return [f"class_{c:0{width}d}" for c in range(spec.classes)]


def _plan(spec: _Spec) -> list[_Job]:
    """Labels round-robin (balanced classes); PNGs picked at random so they spread over classes."""
    names = _class_names(spec)
    width = max(5, len(str(spec.count - 1)))
    n_png = int(spec.count * spec.png_fraction + 0.5)
    picker = np.random.default_rng([spec.seed, spec.count, 0x504E47])  # own stream for formats
    png = set(picker.permutation(spec.count)[:n_png].tolist())
    jobs = []
    for index in range(spec.count):
        label = index % spec.classes
        fmt, ext = ("PNG", "png") if index in png else ("JPEG", "jpg")
        jobs.append(_Job(f"{names[label]}/{index:0{width}d}.{ext}", index, label, fmt))
    return jobs


# --- Digits --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _font_paths() -> tuple[str, ...]:
    """Known digit-friendly TrueType fonts on this machine, in a stable order."""
    wanted = set(_FONT_FILES)
    found: dict[str, str] = {}
    for root in _FONT_DIRS:
        for dirpath, _dirs, files in os.walk(root):
            for name in wanted.intersection(files):
                found.setdefault(name, os.path.join(dirpath, name))
    return tuple(found[name] for name in sorted(found))


@lru_cache(maxsize=32)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font at ``size``; ``path=None`` means Pillow's built-in one (scalable since 10.1)."""
    if path is not None:
        return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow without FreeType: small bitmap font
        return ImageFont.load_default()


def _glyph(rng: np.random.Generator, digit: int) -> Image.Image:
    """The digit, white on black, drawn large with random font, stroke, rotation and shear."""
    paths = _font_paths() or (None,)
    font = _font(paths[int(rng.integers(len(paths)))], 72)
    canvas = Image.new("L", (128, 128))
    stroke = int(rng.integers(0, 6))
    draw = ImageDraw.Draw(canvas)
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text(
            (64, 64), str(digit), 255, font, anchor="mm", stroke_width=stroke, stroke_fill=255
        )
    else:  # bitmap fallback: no anchors or strokes; _fit_digit scales it up anyway
        draw.text((60, 58), str(digit), 255, font)
    angle = np.deg2rad(rng.uniform(-15, 15))
    shear, stretch = rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.15)
    forward = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = forward @ np.array([[stretch, shear], [0.0, 1.0]])
    inverse = np.linalg.inv(forward)  # Image.transform maps output pixels back to input
    offset = np.array([64.0, 64.0]) - inverse @ np.array([64.0, 64.0])
    coeffs = (*inverse[0], offset[0], *inverse[1], offset[1])
    return canvas.transform(canvas.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)


def _fit_digit(rng: np.random.Generator, glyph: Image.Image) -> np.ndarray:
    """MNIST layout: fit the glyph in a ~20x20 box, centre of mass near the middle of 28x28."""
    box = glyph.getbbox() or (0, 0, glyph.width, glyph.height)
    glyph = glyph.crop(box)
    scale = rng.uniform(15.5, 20.5) / max(glyph.size)
    small = glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
        Image.Resampling.LANCZOS,
    )
    ink = np.asarray(small, dtype=np.float32)
    total = ink.sum() or 1.0
    cy = (ink.sum(axis=1) @ np.arange(ink.shape[0])) / total
    cx = (ink.sum(axis=0) @ np.arange(ink.shape[1])) / total
    shift = rng.uniform(-1.5, 1.5, 2)
    top = int(np.clip(round(14 + shift[0] - cy), 0, 28 - ink.shape[0]))
    left = int(np.clip(round(14 + shift[1] - cx), 0, 28 - ink.shape[1]))
    out = np.zeros((28, 28), dtype=np.float32)
    out[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return out


def _render_digit(seed: int, index: int, digit: int) -> Image.Image:
    rng = np.random.default_rng([seed, index])
    ink = _fit_digit(rng, _glyph(rng, digit))
    blurred = Image.fromarray(ink.astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.0, 0.6))
    )
    ink = np.asarray(blurred, dtype=np.float32) * rng.uniform(1.2, 1.6)  # saturate the core
    noise = rng.normal(0.0, 10.0, ink.shape).astype(np.float32)
    ink = np.where(ink > 24, ink + noise, ink)  # noise on the strokes; background stays 0
    return Image.fromarray(np.clip(ink, 0, 255).astype(np.uint8), "L")


# --- Photos --------------------------------------------------------------------------------


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) to RGB uint8, shape ``h.shape + (3,)``."""
    h = np.asarray(h, dtype=np.float64) % 1.0
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = sector.astype(int) % 6
    rgb = [np.choose(i, c) for c in ([v, q, p, p, t, v], [t, v, v, q, p, p], [p, p, t, v, v, q])]
    return (np.stack(rgb, axis=-1) * 255 + 0.5).astype(np.uint8)


def _palette(rng: np.random.Generator, hue: float, n: int, spread: float) -> np.ndarray:
    """``n`` colours around a class hue: the class is a colour theme, each image varies it."""
    return _hsv_to_rgb(
        hue + rng.normal(0.0, spread, n), rng.uniform(0.15, 0.85, n), rng.uniform(0.2, 0.95, n)
    )


def _backdrop(rng: np.random.Generator, hue: float, size: tuple[int, int]) -> Image.Image:
    """Smooth colour field: a few random colours on a coarse grid, upsampled bicubically."""
    rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    grid = _palette(rng, hue, rows * cols, 0.06).reshape(rows, cols, 3)
    return Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)


def _grain_map(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Per-pixel grain strength (Y levels): a coarse random grid, so smooth regions sit next
    to textured ones."""
    grid = rng.normal(rng.uniform(12.0, 30.0), rng.uniform(3.0, 10.0), (3, 4))
    coarse = Image.fromarray(np.clip(grid, 2, 60).astype(np.uint8), "L")
    return coarse.resize(size, Image.Resampling.BICUBIC)


def _shape_outline(rng: np.random.Generator, size: tuple[int, int]) -> tuple[str, list[float]]:
    w, h = size
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = rng.uniform(2, max(3, h / 2.5), 2)
    if rng.random() < 0.55:
        return "ellipse", [cx - rx, cy - ry, cx + rx, cy + ry]
    corners = int(rng.integers(3, 8))
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    radii = rng.uniform(0.4, 1.0, corners) * rx
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return "polygon", points.ravel().tolist()


def _draw_shapes(
    rng: np.random.Generator, hue: float, image: Image.Image, grain: Image.Image
) -> None:
    """Objects: a ground band sometimes, then ellipses and polygons, each with its own grain."""
    paint, texture = ImageDraw.Draw(image), ImageDraw.Draw(grain)
    w, h = image.size
    if rng.random() < 0.5:  # horizon: a wavy ground polygon across the bottom
        xs = np.linspace(0, w, 9)
        ys = h * rng.uniform(0.45, 0.8) + rng.normal(0, h * 0.04, xs.size)
        ground = [*np.stack([xs, ys], axis=1).ravel().tolist(), w, h, 0, h]
        colour = tuple(_palette(rng, hue + 0.1, 1, 0.05)[0].tolist())
        paint.polygon(ground, fill=colour)
        texture.polygon(ground, fill=int(rng.integers(16, 44)))
    count = int(rng.integers(3, 12))
    colours = _palette(rng, hue, count, 0.15)
    strengths = rng.integers(4, 44, count)
    for colour, strength in zip(colours, strengths, strict=True):
        kind, outline = _shape_outline(rng, (w, h))
        getattr(paint, kind)(outline, fill=tuple(colour.tolist()))
        getattr(texture, kind)(outline, fill=int(strength))


def _fractal(rng: np.random.Generator, size: tuple[int, int], roughness: float) -> np.ndarray:
    """1/f-like noise: octaves from a 3-row grid up to ``size``, finer ones weaker."""
    w, h = size
    field = rng.standard_normal((3, 3 * w // h + 1), dtype=np.float32)
    while field.shape[0] * 2 <= h:
        rows, cols = field.shape[0] * 2, field.shape[1] * 2
        field = np.asarray(
            Image.fromarray(field, "F").resize((cols, rows), Image.Resampling.BILINEAR)
        )
        octave = rng.random((rows, cols), dtype=np.float32) - 0.5
        field = field + octave * (3.4 * (cols / w) ** roughness)
    return np.asarray(Image.fromarray(field, "F").resize(size, Image.Resampling.BILINEAR))


def _shade(
    rng: np.random.Generator, luma: Image.Image, grain: Image.Image, detail: float
) -> Image.Image:
    """Lighting and mid-frequency texture: multiply the luma by a fractal field.

    Also lowers it by the grain strength, the mean of the one-sided grain added later.
    """
    contrast = rng.uniform(0.1, 0.25) * detail
    shading = 1.0 + contrast * _fractal(rng, luma.size, rng.uniform(0.35, 1.0))
    shaded = np.asarray(luma, dtype=np.float32) * shading - np.asarray(grain, dtype=np.float32)
    return Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8), "L")


def _add_grain(rng: np.random.Generator, luma: Image.Image, strength: Image.Image) -> Image.Image:
    """Fine detail: uniform noise in [0, 2 * strength) added to the luma, saturating at 255."""
    noise = np.frombuffer(rng.bytes(luma.width * luma.height), dtype=np.uint8)
    noise = noise.reshape(luma.height, luma.width)
    grain = np.multiply(noise, np.asarray(strength), dtype=np.uint16) >> 7
    grain += np.asarray(luma)
    return Image.fromarray(np.minimum(grain, 255).astype(np.uint8), "L")


def _render_photo(seed: int, index: int, label: int, spec: _Spec) -> Image.Image:
    """A YCbCr picture: colour and shading built at half resolution, luma grain at full size.

    Chroma is upsampled by pixel doubling: JPEG's 4:2:0 subsampling averages it straight back.
    """
    rng = np.random.default_rng([seed, index])
    size = spec.size
    half = ((size[0] + 1) // 2, (size[1] + 1) // 2)
    hue = label / spec.classes + rng.normal(0.0, 0.03)
    colour = _backdrop(rng, hue, half)
    grain = _grain_map(rng, half)
    _draw_shapes(rng, hue, colour, grain)
    detail = float(np.exp(rng.uniform(-0.2, 1.0)))  # busy or calm picture: spreads file sizes
    grain = grain.point(np.minimum(np.arange(256) * detail + 0.5, 90).astype(int).tolist())
    y, cb, cr = colour.convert("YCbCr").split()
    y = _shade(rng, y, grain, detail).resize(size, Image.Resampling.BILINEAR)
    y = _add_grain(rng, y, grain.resize(size, Image.Resampling.NEAREST))
    cb, cr = (c.resize(size, Image.Resampling.NEAREST) for c in (cb, cr))
    return Image.merge("YCbCr", (y, cb, cr))


# --- Writing -------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, "JPEG", quality=quality)
    else:
        # Level 1: under half of level 6's time on these grainy photos, and smaller files.
        image.convert("L" if image.mode == "L" else "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _write_job(root: str, spec: _Spec, job: _Job) -> None:
    if spec.kind == "digits":
        image = _render_digit(spec.seed, job.index, job.label)
    else:
        image = _render_photo(spec.seed, job.index, job.label, spec)
    Path(root, job.relpath).write_bytes(_encode(image, job.fmt, spec.quality))


def _pool_context() -> BaseContext:
    """Fork is cheapest, but forking a process that has started TensorFlow's threads is not."""
    if sys.platform == "linux" and "tensorflow" not in sys.modules:
        return get_context("fork")
    return get_context("forkserver" if sys.platform != "win32" else "spawn")


def _run(root: Path, spec: _Spec, jobs: list[_Job], workers: int) -> None:
    """Write every job, in this process or in a pool (each image depends only on its job)."""
    write = partial(_write_job, str(root), spec)
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            write(job)
        return
    chunk = max(1, min(64, len(jobs) // (workers * 4)))
    with ProcessPoolExecutor(
        workers,
        mp_context=_pool_context(),
        initializer=end_with_parent,  # no idle worker left behind when this is killed
        initargs=(os.getpid(),),
    ) as pool:
        for _ in pool.map(write, jobs, chunksize=chunk):
            pass


def _listing(root: Path) -> set[str]:
    """Visible files one level down (``class/file``), the shape of a sample folder."""
    found = set()
    for entry in os.scandir(root):
        if entry.is_dir() and not entry.name.startswith("."):
            found.update(
                f"{entry.name}/{f.name}"
                for f in os.scandir(entry.path)
                if not f.name.startswith(".")
            )
    return found


def _is_complete(root: Path, spec: _Spec, expected: set[str]) -> bool:
    """Cheap check: the marker says complete for these parameters and no file is missing."""
    marker = root / MARKER
    text = marker.read_text(encoding="utf-8") if marker.is_file() else ""
    return text == spec.marker_text(complete=True) and _listing(root) == expected


def _claim(root: Path, spec: _Spec) -> None:
    """Refuse folders with foreign content; mark ours as in progress before writing."""
    root.mkdir(parents=True, exist_ok=True)
    ours = (root / MARKER).is_file()
    if not ours and any(not p.name.startswith(".") for p in root.iterdir()):
        raise SampleError(
            f"{root}: folder is not empty and was not made by tfrecord_tools.sample; "
            "pass a new or empty folder"
        )
    (root / MARKER).write_text(spec.marker_text(complete=False), encoding="utf-8")


def _remove_stale(root: Path, expected: set[str]) -> None:
    """Drop sample images a previous run with other parameters left behind (ours only)."""
    for relpath in _listing(root) - expected:
        if _SAMPLE_FILE.fullmatch(relpath.rsplit("/", 1)[1]):
            (root / relpath).unlink()
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and not any(entry.iterdir()):
            entry.rmdir()


def _make(out_dir: str | os.PathLike[str], spec: _Spec, workers: int) -> Path:
    _check(_is_int(workers) and workers >= 1, "workers", "an integer >= 1", workers)
    root = Path(out_dir)
    jobs = _plan(spec)
    expected = {job.relpath for job in jobs}
    if root.is_dir() and _is_complete(root, spec, expected):
        return root
    _claim(root, spec)
    for name in _class_names(spec):
        (root / name).mkdir(exist_ok=True)
    _run(root, spec, jobs, workers)
    _remove_stale(root, expected)
    (root / MARKER).write_text(spec.marker_text(complete=True), encoding="utf-8")
    return root


# --- Public entry points -------------------------------------------------------------------


def make_digits(
    out_dir: str | os.PathLike[str], *, count: int = 1000, seed: int = 0, workers: int = 1
) -> Path:
    """Write an MNIST-like folder: ``0``..``9``, 28x28 grayscale PNGs, white digit on black.

    Classes are balanced (image ``i`` shows digit ``i % 10``). Returns ``out_dir`` as a Path;
    a folder already complete for these parameters is returned untouched.
    """
    spec = _Spec("digits", count, seed, classes=10, size=(28, 28), png_fraction=1.0, quality=100)
    return _make(out_dir, spec, workers)


def make_photos(
    out_dir: str | os.PathLike[str],
    *,
    count: int = 200,
    seed: int = 0,
    png_fraction: float = 0.1,
    size: tuple[int, int] = (500, 375),
    quality: int = 90,
    classes: int = 5,
    workers: int = 1,
) -> Path:
    """Write a photo-like folder: ``class_0``.. with RGB images of ``size`` (width, height).

    ``round(count * png_fraction)`` of them, picked at random from ``seed`` and ``count``, are
    PNG (~320 KB at the defaults); the rest JPEG at ``quality`` (~95 KB, 55-130 KB, like real
    photos). Image ``i`` goes to class ``i % classes``; each class has its own colour theme.
    Returns ``out_dir`` as a Path; a folder already complete for these parameters is returned
    untouched.
    """
    spec = _Spec("photos", count, seed, classes, tuple(size), png_fraction, quality)
    return _make(out_dir, spec, workers)
