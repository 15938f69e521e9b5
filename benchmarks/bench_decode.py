"""Decoding fewer pixels: JPEG DCT scaling, crops decoded as crops, float output.

    .venv/bin/python benchmarks/bench_decode.py [--work /tmp/tfrt-decode] [--repeats 3]

Data (made once in --work): ~1024x768 noisy JPEGs q90 (200) and ~2000x1500 (50), each
converted to TFRecords; read at 224x224, batch 32. Pairs, each run interleaved (A, B, A,
B, ...: the machine is shared, a drift shifts both alike) after a warm-up pass of each, in
one fresh process pinned to 1 core, then to 2 (``os.sched_setaffinity`` before TensorFlow
is imported); each timed pass reads the set ``EPOCHS`` times (800 and 300 images); timed
with ``tfrecord_tools.bench.timing.time_pass``, medians of --repeats:

- ``decode_scaling="auto"`` vs ``"off"`` (goal: >= 1.15x);
- ``crop="random"`` (decoded as the crop) vs decoding the whole JPEG and taking the same
  crop (the same windows: same seed, same records);
- ``dtype="float32"`` vs ``"uint8"``;
- the ceiling: a bare loop of ``decode_jpeg`` at the reader's ratio vs at 1/1, each + the
  same resize (what scaling can save on these photos, with nothing else in the way).

PSNR (dB, mean over 20 images of each set) against Pillow's LANCZOS resize of the same
JPEGs: full or scaled decode, then TensorFlow's bilinear resize with and without
``antialias``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SETS = {"1024x768": (768, 1024, 200), "2000x1500": (1500, 2000, 50)}
#: Passes over each set per timed pass (one iterator): 800 and 300 images, so that the
#: iterator's start (~70 ms here) and the last batches' tail on 2 cores weigh little (with
#: one pass of 200 photos, 7 batches, both arms carried them and the ratios shrank)
EPOCHS = {"1024x768": 4, "2000x1500": 6}
SCALE = {"1024x768": 2, "2000x1500": 4}  # the DCT ratio the reader picks for 224
SIZE = (224, 224)
BATCH = 32


def make_images(root: Path, height: int, width: int, count: int) -> None:
    """Noisy photos: a smooth random field (bicubic from 1/32 size) + Gaussian noise, q90."""
    import numpy as np
    from PIL import Image

    for i in range(count):
        rng = np.random.default_rng(i)
        label = root / f"c{i % 2}"
        label.mkdir(parents=True, exist_ok=True)
        field = rng.integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8)
        image = Image.fromarray(field).resize((width, height), Image.BICUBIC)
        pixels = np.asarray(image, np.float32) + rng.normal(0, 12, (height, width, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            label / f"{i:04d}.jpg", quality=90
        )


def prepare(work: Path) -> dict[str, dict[str, str]]:
    from tfrecord_tools import convert_image_folder

    out = {}
    for name, (height, width, count) in SETS.items():
        src, dst = work / name / "images", work / name / "tfrecords"
        if not (dst / "manifest.json").exists() and not any(dst.glob("*.json")):
            make_images(src, height, width, count)
            convert_image_folder(src, dst, workers=2, quiet=True, overwrite=True)
        out[name] = {"images": str(src), "tfrecords": str(dst)}
    return out


def psnr_table(data: dict[str, dict[str, str]], n: int = 20) -> dict[str, dict[str, float]]:
    """Mean PSNR against Pillow LANCZOS: {set: {"full"|"scaled" + "+aa"?: dB}}."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from tfrecord_tools.read import decode

    table = {}
    for name, paths in data.items():
        files = sorted(Path(paths["images"]).rglob("*.jpg"))[:n]
        scores: dict[str, list[float]] = {}
        for path in files:
            raw = path.read_bytes()
            with Image.open(io.BytesIO(raw)) as im:
                ref = np.asarray(im.convert("RGB").resize(SIZE[::-1], Image.LANCZOS), np.float64)
                width, height = im.size
            ratio = int(decode.scale_ratio(height, width, tf.constant(SIZE)))
            for how, r in (("full", 1), ("scaled", ratio)):
                image = tf.io.decode_jpeg(raw, channels=3, ratio=r)
                for aa in (False, True):
                    out = decode.resize(image, SIZE, dtype="float32", antialias=aa).numpy()
                    mse = np.mean((np.clip(out, 0, 255) - ref) ** 2)
                    key = f"{how} (1/{r})" if not aa else f"{how} (1/{r}) antialias"
                    key = key.replace(f"(1/{r})", "") if how == "full" else key
                    scores.setdefault(" ".join(key.split()), []).append(10 * np.log10(255**2 / mse))
        table[name] = {k: round(float(np.mean(v)), 2) for k, v in scores.items()}
    return table


# --- the child: one process pinned to N cores, the pairs interleaved ------------------------


def child(spec: dict) -> dict:
    os.sched_setaffinity(0, spec["cpus"])  # before TensorFlow sizes its pools
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tfrecord_tools.bench.timing import time_pass
    from tfrecord_tools.read.pipeline import make_dataset

    out = {"cpus": sorted(os.sched_getaffinity(0)), "pairs": {}}
    for name, paths in spec["data"].items():
        path = paths["tfrecords"]
        epochs = EPOCHS[name]

        def reader(path, epochs=epochs, **options):
            return lambda: make_dataset(
                path, batch_size=BATCH, image_size=SIZE, repeat=epochs, **options
            )

        pairs = {
            "scaled vs off": (reader(path), reader(path, decode_scaling="off")),
            "random crop vs whole+crop": (
                reader(path, crop="random", seed=0),
                _whole_then_crop(tf, path, seed=0, epochs=epochs),
            ),
            "random crop (off) vs whole+crop": (
                reader(path, crop="random", seed=0, decode_scaling="off"),
                _whole_then_crop(tf, path, seed=0, epochs=epochs),
            ),
            "float32 vs uint8": (reader(path, dtype="float32"), reader(path)),
            # the ceiling of scaling on these photos: a bare loop of decode_jpeg + resize
            "bare loop, scaled vs full (the ceiling)": (
                _bare_loop(tf, path, ratio=SCALE[name], epochs=epochs),
                _bare_loop(tf, path, ratio=1, epochs=epochs),
            ),
        }
        for label, (a, b) in pairs.items():
            time_pass(a())  # warm-up: tracing, page cache
            time_pass(b())
            times: dict[str, list[float]] = {"a": [], "b": []}
            for _ in range(spec["repeats"]):
                for key, make in (("a", a), ("b", b)):
                    r = time_pass(make())
                    times[key].append(r["last_s"])
            n = r["images"]
            ra = n / statistics.median(times["a"])
            rb = n / statistics.median(times["b"])
            out["pairs"][f"{name}: {label}"] = {
                "images": n,
                "a_images_per_s": round(ra, 1),
                "b_images_per_s": round(rb, 1),
                "a_seconds": times["a"],
                "b_seconds": times["b"],
                "ratio": round(ra / rb, 3),
            }
    return out


def _bare_loop(tf, path: str, *, ratio: int, epochs: int):
    """The least a reader can do: ``decode_jpeg`` at a fixed ``ratio``, then the reader's
    resize (no format switch, no per-record scale choice, no damage guard)."""
    from tfrecord_tools.read import decode

    def one(encoded, _key):
        return decode.resize(tf.io.decode_jpeg(encoded, channels=3, ratio=ratio), SIZE)

    return _graph_loop(tf, path, one, epochs=epochs)


def _whole_then_crop(tf, path: str, *, seed: int, epochs: int):
    """The baseline of a random crop: the reader's own windows and keys, but every JPEG
    decoded whole before it is cropped (what a pipeline without decode_and_crop does)."""
    from tfrecord_tools.read import decode
    from tfrecord_tools.read.options import ReadOptions

    opts = ReadOptions(batch_size=BATCH, image_size=SIZE, crop="random", seed=seed)
    plan = decode.Plan.of(opts)

    def one(encoded, key):
        image = tf.io.decode_jpeg(encoded, channels=3)
        shape = tf.shape(image)
        y, x, ch, cw = tf.unstack(
            decode.crop_window(shape[0], shape[1], plan, decode.uniforms(key))
        )
        return decode.resize(image[y : y + ch, x : x + cw], SIZE)

    return _graph_loop(tf, path, one, epochs=epochs, keyed=opts)


def _graph_loop(tf, path: str, one, *, epochs: int, keyed=None):
    """A baseline reader: the shards read ``epochs`` times, each batch parsed (image bytes
    and label), then ``one(encoded, key)`` per record in a graph loop, as the reader's
    ``decode_batch`` does. ``keyed``: the ReadOptions whose per-record seeds ``key`` are
    (the reader's own, ``record_keys``); else ``key`` is 0."""
    from tfrecord_tools.format import example
    from tfrecord_tools.read.pipeline import record_keys
    from tfrecord_tools.read.shards import resolve_shards

    files = resolve_shards(path).files
    spec = {
        example.ENCODED: tf.io.FixedLenFeature([], tf.string),
        example.LABEL: tf.io.FixedLenFeature([], tf.int64),
    }

    def batch(index, records):
        f = tf.io.parse_example(records, spec)
        keys = record_keys(index, keyed) if keyed is not None else tf.zeros_like(index)
        images = tf.map_fn(
            lambda a: one(a[0], a[1]),
            (f[example.ENCODED], keys),
            fn_output_signature=tf.TensorSpec([*SIZE, 3], tf.uint8),
            parallel_iterations=1,
        )
        return images, f[example.LABEL]

    def make():
        ds = tf.data.TFRecordDataset(files).repeat(epochs).enumerate().batch(BATCH)
        return ds.map(batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-decode", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.work)
    cpus = sorted(os.sched_getaffinity(0))
    results = {"psnr_vs_lanczos_db": None, "cores": {}}
    for cores in (int(c) for c in args.cores.split(",")):
        spec = {"cpus": cpus[:cores], "data": data, "repeats": args.repeats}
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(f"{cores}-core child failed:\n{proc.stderr[-3000:]}")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        found = json.loads(line[len("RESULT ") :])
        results["cores"][cores] = found
        for label, r in found["pairs"].items():
            print(
                f"{cores} core(s) {label}: {r['a_images_per_s']:.0f} vs "
                f"{r['b_images_per_s']:.0f} img/s = {r['ratio']:.2f}x",
                flush=True,
            )
    results["psnr_vs_lanczos_db"] = psnr_table(data)
    for name, row in results["psnr_vs_lanczos_db"].items():
        print(f"PSNR vs LANCZOS {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
    (args.work / "bench_decode.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"json: {args.work / 'bench_decode.json'}")


if __name__ == "__main__":
    main()
