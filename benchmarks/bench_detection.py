"""Detection: ``convert coco`` against a per-image loop in the style of the object detection
API's ``create_coco_tf_record.py``, and the detection reader against the classification one.

    .venv/bin/python benchmarks/bench_detection.py [--count 5000] [--repeats 3] [--work DIR]
    .venv/bin/python benchmarks/bench_detection.py --read [--count 5000] [--cores 2]
    .venv/bin/python benchmarks/bench_detection.py --profile [--count 5000]

Data (made once in ``--work``, reused): ``--count`` photos from ``tfrecord_tools.sample``
(~500x375 JPEG q90, ~100 KB, in ``class_k/`` folders so that the same files also make a
classification dataset) and a COCO instances JSON beside them: 4-10 boxes an image (7 on
average), a small polygon each, 80 categories with COCO's ids (1-90, not contiguous).

Conversion (the default): the two arms alternate (ours, baseline; baseline, ours; ...) after
a warm-up of each, ``--repeats`` times, page cache warm; each run is a fresh process, timed
by its wall time and its CPU time (user + system of the process and its waited-for
children: our workers are). The arms:

- ``tfrecord-tools convert coco SRC OUT --annotations FILE --quiet``: the CLI, default
  workers (the cores this process may use) and shards;
- the baseline: one process, written here from what the detection API's script does (not
  its code): load the JSON, index the boxes by image, then per image read the file, open it
  with PIL to check it is a JPEG, sha256 it, build a ``tf.train.Example`` with the script's
  keys (boxes normalised, category ids as labels, class text, is_crowd, area), and write it
  with ``tf.io.TFRecordWriter`` to shard ``i % N`` (N: as many shards as ours wrote). Its
  process imports TensorFlow; the loop alone (JSON to the last shard closed) is timed
  inside it too. The headline ratio sets that loop alone against our whole process.

After the warm-up the two outputs are compared: the same images, boxes (to 1e-6) and
classes. ``--read``: ``make_dataset(task="detection")`` against classification
``make_dataset`` on the same photos (both converted first, untimed), image_size 224,
``crop="random"``, ``flip=True``, batch 32, in one process pinned to ``--cores``,
alternating, medians. ``--profile``: where our conversion's time goes (stages of a real
run, then cProfile of the whole conversion in one process). JSON goes to
``benchmarks/results/detection_{convert,read}.json``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import hashlib
import io
import json
import math
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CLI = [sys.executable, "-m", "tfrecord_tools"]
# Commands run as a user's would: Python may cache bytecode (see bench_convert.py).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"

#: COCO's 80 category ids: 1-90 without the ten it never used.
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


# --- the data ---------------------------------------------------------------------------------


def make_coco(work: Path, count: int, seed: int) -> tuple[Path, Path]:
    """``(image folder, instances JSON)``: sample photos and random boxes, deterministic for
    ``count`` and ``seed``."""
    from PIL import Image

    from tfrecord_tools.sample import make_photos

    base = work / f"coco{count}-seed{seed}"
    images = make_photos(base / "images", count=count, seed=seed, png_fraction=0.0, workers=2)
    annotations = base / "instances.json"
    if annotations.exists():
        return images, annotations
    rng = np.random.default_rng(seed)
    files = sorted(p.relative_to(images).as_posix() for p in images.glob("*/*.jpg"))
    ids = rng.choice(np.arange(1, 600_000), size=len(files), replace=False)
    records, objects = [], []
    for file, image_id in zip(files, ids.tolist(), strict=True):
        with Image.open(images / file) as im:
            width, height = im.size
        records.append({"id": image_id, "file_name": file, "width": width, "height": height})
        for _ in range(int(rng.integers(4, 11))):
            objects.append(_random_object(rng, image_id, width, height, len(objects) + 1))
    categories = [{"id": c, "name": f"thing{c}", "supercategory": "thing"} for c in COCO_IDS]
    data = {"images": records, "annotations": objects, "categories": categories}
    annotations.write_text(json.dumps(data))
    return images, annotations


def _random_object(rng, image_id: int, width: int, height: int, ann_id: int) -> dict:
    """A COCO annotation: a box inside the image (2 decimals, rounded down), an octagon
    inside it as the polygon, an area below the box's, rarely a crowd."""
    w = math.floor(rng.uniform(8, 0.6 * width) * 100) / 100
    h = math.floor(rng.uniform(8, 0.6 * height) * 100) / 100
    x = math.floor(rng.uniform(0, width - w) * 100) / 100
    y = math.floor(rng.uniform(0, height - h) * 100) / 100
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    polygon = np.stack([x + w / 2 * (1 + np.cos(angles)), y + h / 2 * (1 + np.sin(angles))], 1)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": int(rng.choice(COCO_IDS)),
        "bbox": [x, y, w, h],
        "area": round(w * h * float(rng.uniform(0.5, 0.9)), 2),
        "iscrowd": int(rng.random() < 0.01),
        "segmentation": [np.round(polygon.ravel(), 2).tolist()],
    }


# --- the baseline: a per-image loop as the detection API's script does it ----------------------


def convert_like_detection_api(image_dir: str, annotations: str, prefix: str, shards: int) -> dict:
    """The baseline, in this process (TensorFlow imported before it is called)."""
    import PIL.Image
    import tensorflow as tf

    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def bytes_(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def example_of(image: dict, boxes: list[dict], names: dict[int, str]):
        width, height = image["width"], image["height"]
        with tf.io.gfile.GFile(os.path.join(image_dir, image["file_name"]), "rb") as f:
            encoded = f.read()
        if PIL.Image.open(io.BytesIO(encoded)).format != "JPEG":
            raise ValueError(f"{image['file_name']}: not a JPEG")
        key = hashlib.sha256(encoded).hexdigest()
        xmin, xmax, ymin, ymax, crowd, labels, texts, area = ([] for _ in range(8))
        skipped = 0
        for box in boxes:
            x, y, w, h = box["bbox"]
            if w <= 0 or h <= 0 or x + w > width or y + h > height:
                skipped += 1
                continue
            xmin.append(x / width)
            xmax.append((x + w) / width)
            ymin.append(y / height)
            ymax.append((y + h) / height)
            crowd.append(box["iscrowd"])
            labels.append(box["category_id"])
            texts.append(names[box["category_id"]].encode())
            area.append(box["area"])
        feature = {
            "image/height": int64s([height]),
            "image/width": int64s([width]),
            "image/filename": bytes_([image["file_name"].encode()]),
            "image/source_id": bytes_([str(image["id"]).encode()]),
            "image/key/sha256": bytes_([key.encode()]),
            "image/encoded": bytes_([encoded]),
            "image/format": bytes_([b"jpeg"]),
            "image/object/bbox/xmin": floats(xmin),
            "image/object/bbox/xmax": floats(xmax),
            "image/object/bbox/ymin": floats(ymin),
            "image/object/bbox/ymax": floats(ymax),
            "image/object/class/text": bytes_(texts),
            "image/object/class/label": int64s(labels),
            "image/object/is_crowd": int64s(crowd),
            "image/object/area": floats(area),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        return example, skipped

    cpu, start = time.process_time(), time.perf_counter()
    with tf.io.gfile.GFile(annotations) as f:
        data = json.load(f)
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image = collections.defaultdict(list)
    for box in data["annotations"]:
        by_image[box["image_id"]].append(box)
    writers = [
        tf.io.TFRecordWriter(f"{prefix}-{i:05d}-of-{shards:05d}.tfrecord") for i in range(shards)
    ]
    skipped = 0
    for i, image in enumerate(data["images"]):
        example, dropped = example_of(image, by_image[image["id"]], names)
        skipped += dropped
        writers[i % shards].write(example.SerializeToString())
    for writer in writers:
        writer.close()
    return {
        "images": len(data["images"]),
        "skipped_boxes": skipped,
        "loop_s": time.perf_counter() - start,
        "loop_cpu_s": time.process_time() - cpu,
    }


def baseline_child(spec: dict) -> dict:
    start = time.perf_counter()
    import tensorflow as tf

    imported = time.perf_counter() - start
    result = convert_like_detection_api(
        spec["images"], spec["annotations"], spec["prefix"], spec["shards"]
    )
    return {**result, "import_s": imported, "tensorflow": tf.__version__}


# --- the conversion benchmark ------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time, CPU time (the process and its waited-for children) and stdout of ``cmd``."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=ENV)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return wall, cpu, done.stdout


def shard_files(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if ".tfrecord" in p.name and p.suffix != ".idx")


def same_truth(ours: Path, baseline: list[Path], category_ids: dict[str, int]) -> int:
    """Assert both outputs hold the same images with the same boxes and classes (the
    baseline labels by category id, ours 1..K); the number of images."""
    from tfrecord_tools.format.detection import parse_detection
    from tfrecord_tools.format.framing import iter_records

    def read(files: list[Path], label_of) -> dict[str, tuple]:
        found = {}
        for file in files:
            for record in iter_records(file):
                f = parse_detection(record.data)
                found[f.filename] = (
                    np.asarray(f.boxes).reshape(-1, 4),
                    [label_of(v) for v in f.labels],
                )
        return found

    a = read(shard_files(ours), lambda label: label)
    b = read(baseline, lambda cid: category_ids[str(cid)])
    if sorted(a) != sorted(b):
        raise SystemExit(f"the outputs differ: {len(a)} vs {len(b)} images")
    for name, (boxes, labels) in a.items():
        other_boxes, other_labels = b[name]
        if labels != other_labels or not np.allclose(boxes, other_boxes, rtol=0, atol=1e-6):
            raise SystemExit(f"{name}: boxes or classes differ between the arms")
    return len(a)


def bench_convert(work: Path, images: Path, annotations: Path, count: int, repeats: int) -> dict:
    ours_out, api_out = work / "ours", work / "api"
    cmd = [*CLI, "convert", "coco", str(images), str(ours_out)]
    cmd += ["--annotations", str(annotations), "--quiet"]
    print("  $", " ".join(cmd))

    def ours() -> tuple[float, float]:
        shutil.rmtree(ours_out, ignore_errors=True)  # not timed
        wall, cpu, _ = run_timed(cmd)
        return wall, cpu

    ours()  # warm-up: bytecode cached, page cache
    shards = len(shard_files(ours_out))
    spec = {
        "images": str(images),
        "annotations": str(annotations),
        "prefix": str(api_out / "train"),
        "shards": shards,
    }
    base_cmd = [sys.executable, __file__, "--baseline-child", json.dumps(spec)]
    print("  $", " ".join(base_cmd[:3]), "'<spec>'  # the baseline,", shards, "shards")

    def baseline() -> tuple[float, float, dict]:
        shutil.rmtree(api_out, ignore_errors=True)
        api_out.mkdir()
        wall, cpu, out = run_timed(base_cmd)
        return wall, cpu, json.loads(out.strip().splitlines()[-1])

    baseline()
    manifest = json.loads((ours_out / "dataset.json").read_text())
    checked = same_truth(ours_out, shard_files(api_out), manifest["source"]["category_ids"])
    print(f"  outputs checked: the same {checked} images, boxes and classes in both")
    runs: dict[str, list] = {"ours": [], "baseline": []}
    for r in range(repeats):  # A B, B A, A B ...: neither arm always runs first
        first, second = ("ours", ours), ("baseline", baseline)
        for name, arm in (first, second) if r % 2 == 0 else (second, first):
            runs[name].append(arm())
        o, b = runs["ours"][-1], runs["baseline"][-1]
        print(
            f"  run {r + 1}: ours {o[0]:.3f} s ({o[1]:.2f} s CPU); baseline {b[0]:.3f} s, "
            f"its loop {b[2]['loop_s']:.3f} s ({b[2]['loop_cpu_s']:.2f} s CPU)",
            flush=True,
        )
    return summarise(runs, count, shards)


def _row(label: str, walls: list[float], cpus: list[float], count: int) -> dict:
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    row = {
        "wall_s": walls,
        "cpu_s": cpus,
        "wall_s_median": wall,
        "images_per_s": count / wall,
        "cpu_s_median": cpu,
        "cpu_us_per_image": 1e6 * cpu / count,
    }
    print(
        f"  {label:<44} {wall:7.3f} s ({min(walls):.3f}-{max(walls):.3f})  "
        f"{count / wall:8,.0f} img/s  {1e6 * cpu / count:7,.0f} us CPU/img"
    )
    return row


def summarise(runs: dict[str, list], count: int, shards: int) -> dict:
    ours, base = runs["ours"], runs["baseline"]
    print(f"\n  {'arm (' + str(count) + ' images, medians)':<44} {'wall':>7}   (range)")
    rows = {
        "ours_process": _row(
            "tfrecord-tools convert coco, whole process",
            [w for w, _ in ours],
            [c for _, c in ours],
            count,
        ),
        "baseline_process": _row(
            "API-style loop, whole process", [w for w, _, _ in base], [c for _, c, _ in base], count
        ),
        "baseline_loop": _row(
            "API-style loop, the loop alone",
            [r["loop_s"] for _, _, r in base],
            [r["loop_cpu_s"] for _, _, r in base],
            count,
        ),
    }
    ratios = {
        "loop_over_ours": rows["baseline_loop"]["wall_s_median"]
        / rows["ours_process"]["wall_s_median"],
        "process_over_ours": rows["baseline_process"]["wall_s_median"]
        / rows["ours_process"]["wall_s_median"],
        "cpu_loop_over_ours": rows["baseline_loop"]["cpu_s_median"]
        / rows["ours_process"]["cpu_s_median"],
    }
    print(
        f"\n  ours is {ratios['loop_over_ours']:.2f}x the baseline's loop alone (goal 5x), "
        f"{ratios['process_over_ours']:.2f}x its whole process; CPU per image: the loop "
        f"{ratios['cpu_loop_over_ours']:.2f}x ours"
    )
    return {
        "count": count,
        "shards": shards,
        "rows": rows,
        "ratios": ratios,
        "baseline_import_s": statistics.median(r["import_s"] for _, _, r in base),
        "tensorflow": base[0][2]["tensorflow"],
    }


# --- --profile: where our conversion's time goes -----------------------------------------------

_STAGES = """
import json, sys, time
start = time.perf_counter()
import tfrecord_tools as tt
from tfrecord_tools.convert.sources import annotated, coco, detection
from tfrecord_tools.convert import steps
imported = time.perf_counter() - start
spent = {}

def timed(name, fn):
    def wrapper(*a, **k):
        cpu, t = time.process_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            spent[name] = {"wall_s": wall, "main_cpu_s": cpu}
    return wrapper

coco.read_coco = timed("read_coco (JSON -> annotations)", coco.read_coco)
annotated.check_annotations = timed("check_annotations (sizes listed, boxes normalised)",
                                    annotated.check_annotations)
annotated.steps.run = timed("steps.run (plan, workers write the shards, manifest)", steps.run)
t = time.perf_counter()
tt.convert_coco(sys.argv[1], sys.argv[2], annotations=sys.argv[3], quiet=True)
spent["convert_coco call"] = {"wall_s": time.perf_counter() - t}
spent["start-up + import tfrecord_tools"] = {"wall_s": imported}
print(json.dumps(spent))
"""


class _InlineExecutor:
    """A ThreadPoolExecutor stand-in that runs ``map`` in the calling thread, so that
    cProfile (which sees one thread) sees check_annotations' work too."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, *iterables):
        return map(fn, *iterables)


def step_costs(work: Path, images: Path, annotations: Path) -> dict[str, float]:
    """CPU us per image of each step of our conversion, run alone in this process over the
    whole set (no profiler: its overhead per Python call distorts the small steps)."""
    import pickle
    from array import array

    from tfrecord_tools.convert.sources.coco import read_coco
    from tfrecord_tools.convert.sources.detection import DetectionShard, check_annotations
    from tfrecord_tools.convert.sources.image_folder import read_listed
    from tfrecord_tools.format.detection import encode_detection_parts
    from tfrecord_tools.format.writer import ShardWriter
    from tfrecord_tools.images.probe import probe_image

    def cpu(fn):
        start = time.process_time()
        value = fn()
        return time.process_time() - start, value

    costs: dict[str, float] = {}
    root = str(images)
    spent, read = cpu(lambda: read_coco(annotations))
    costs["main: read_coco (json.loads + objects + the file's sha256)"] = spent
    data = annotations.read_bytes()
    costs["main:   of which json.loads"] = cpu(lambda: json.loads(data))[0]
    costs["main:   of which the file's sha256 (the resume identity)"] = cpu(
        lambda: hashlib.sha256(data).hexdigest()
    )[0]
    spent, checked = cpu(lambda: check_annotations(read, root, workers=1))
    costs["main: check_annotations (stat each file + normalise the boxes)"] = spent
    planned = checked.images
    samples = array("q", range(len(planned)))
    costs["main: pickling the shard jobs (forked workers: indices)"] = cpu(
        lambda: pickle.dumps(DetectionShard(root, shared_key="k", samples=samples))
    )[0]
    costs["main:   were the images pickled (no fork: Beam, TensorFlow imported)"] = cpu(
        lambda: pickle.dumps(DetectionShard(root, tuple(planned)))
    )[0]
    paths = [os.path.join(root, i.path) for i in planned]
    spent, datas = cpu(lambda: [read_listed(p) for p in paths])
    costs["worker: read the file"] = spent
    spent, probed = cpu(lambda: [probe_image(d, path="x") for d in datas])
    costs["worker: probe_image"] = spent

    def encode_all():
        return [
            encode_detection_parts(
                encoded=data,
                image_format=info.format,
                height=info.height,
                width=info.width,
                channels=info.channels,
                filename=image.path,
                source_id=image.source_id,
                objects=image.objects,
            )
            for image, (data, info) in zip(planned, probed, strict=True)
        ]

    spent, examples = cpu(encode_all)
    costs["worker: encode_detection_parts (all of it)"] = spent
    costs["worker:   of which the image/key/sha256"] = cpu(
        lambda: [hashlib.sha256(d).hexdigest() for d in datas]
    )[0]

    def write_all():
        with ShardWriter(work / "steps.tfrecord") as writer:
            for parts in examples:
                writer.write_parts(parts)
            writer.commit()

    costs["worker: ShardWriter.write_parts (framing, CRC, shard sha256, write)"] = cpu(write_all)[0]
    costs["worker:   of which the shard's sha256"] = cpu(
        lambda: [hashlib.sha256().update(p) for parts in examples for p in parts]
    )[0]
    for name in ("steps.tfrecord", "steps.tfrecord.idx"):
        (work / name).unlink(missing_ok=True)
    n = len(planned)
    return {name: 1e6 * seconds / n for name, seconds in costs.items()}


def profile(work: Path, images: Path, annotations: Path, count: int) -> dict:
    out = work / "profiled"
    shutil.rmtree(out, ignore_errors=True)
    cpu, start = _children_cpu(), time.perf_counter()
    _, _, stdout = run_timed(
        [sys.executable, "-c", _STAGES, str(images), str(out), str(annotations)]
    )
    stages = json.loads(stdout.strip().splitlines()[-1])
    stages["whole process"] = {
        "wall_s": time.perf_counter() - start,
        "cpu_s": _children_cpu() - cpu,
    }
    print(f"  stages of one run (default workers), {count} images:")
    for name, figures in stages.items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"    {name:<58} {shown}")

    costs = step_costs(work, images, annotations)
    print("\n  CPU us per image of each step, alone (one thread, no profiler):")
    for name, us in costs.items():
        print(f"    {name:<72} {us:7.1f}")

    import tfrecord_tools as tt
    from tfrecord_tools.convert.sources import detection

    shutil.rmtree(out, ignore_errors=True)
    real = detection.ThreadPoolExecutor
    detection.ThreadPoolExecutor = _InlineExecutor
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        tt.convert_coco(images, out, annotations=annotations, workers=1, quiet=True)
        profiler.disable()
    finally:
        detection.ThreadPoolExecutor = real
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print("\n  cProfile, the whole conversion in this process (workers=1, checks inline):")
    print(text.getvalue())
    total = sum(row[2] for row in stats.stats.values())  # tottime of every function
    return {
        "stages": stages,
        "step_cpu_us_per_image": costs,
        "profile_total_s": total,
        "profile": text.getvalue(),
    }


# --- --read: the detection reader against the classification reader --------------------------


def read_child(spec: dict) -> dict:
    os.sched_setaffinity(0, spec["cpus"])  # before TensorFlow sizes its thread pools
    from tfrecord_tools import make_dataset
    from tfrecord_tools.bench.timing import time_pass

    options = {"batch_size": 32, "image_size": 224, "crop": "random", "flip": True, "seed": 0}

    def detection():
        ds = make_dataset(spec["detection"], task="detection", **options)
        return ds.map(lambda batch: (batch["image"], batch["boxes"]))  # time_pass's shape

    def classification():
        return make_dataset(spec["classification"], **options)

    arms = {"detection": detection, "classification": classification}
    for make in arms.values():
        time_pass(make())  # warm-up: tracing, page cache
    passes: dict[str, list[dict]] = {name: [] for name in arms}
    for _ in range(spec["repeats"]):
        for name, make in arms.items():
            passes[name].append(time_pass(make()))
    result = {"cpus": sorted(os.sched_getaffinity(0))}
    for name, found in passes.items():
        images = found[0]["images"]
        seconds = [p["last_s"] for p in found]
        cpu = statistics.median(p["cpu_s"] for p in found)
        result[name] = {
            "images": images,
            "seconds": seconds,
            "images_per_s": images / statistics.median(seconds),
            "cpu_us_per_image": 1e6 * cpu / images,
        }
    result["ratio"] = result["detection"]["images_per_s"] / result["classification"]["images_per_s"]
    return result


def bench_read(work: Path, images: Path, annotations: Path, repeats: int, cores: list[int]) -> dict:
    import tfrecord_tools as tt

    detection, classification = work / "read-detection", work / "read-classification"
    if not (detection / "dataset.json").exists():
        tt.convert_coco(images, detection, annotations=annotations, quiet=True, overwrite=True)
    if not (classification / "dataset.json").exists():
        tt.convert_image_folder(images, classification, quiet=True, overwrite=True)
    cpus = sorted(os.sched_getaffinity(0))
    results = {}
    for n in cores:
        spec = {
            "cpus": cpus[:n],
            "detection": str(detection),
            "classification": str(classification),
            "repeats": repeats,
        }
        proc = subprocess.run(
            [sys.executable, __file__, "--read-child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            env=ENV,
        )
        if proc.returncode != 0:
            sys.exit(f"{n}-core read child failed:\n{proc.stderr[-3000:]}")
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        results[n] = found
        det, cls = found["detection"], found["classification"]
        print(
            f"  {n} core(s), {det['images']} images at 224, random crop + flip, batch 32: "
            f"detection {det['images_per_s']:,.0f} img/s ({det['cpu_us_per_image']:,.0f} us "
            f"CPU/img) vs classification {cls['images_per_s']:,.0f} "
            f"({cls['cpu_us_per_image']:,.0f}) = {found['ratio']:.2f}x (goal >= 0.9)"
        )
    return results


# --- main -------------------------------------------------------------------------------------


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfrt-detection"))
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--read", action="store_true", help="the reading benchmark instead")
    mode.add_argument("--profile", action="store_true", help="where our conversion's time goes")
    parser.add_argument("--cores", default="2", help="--read: core counts, e.g. 1,2")
    parser.add_argument("--baseline-child", help=argparse.SUPPRESS)
    parser.add_argument("--read-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child:
        print(json.dumps(baseline_child(json.loads(args.baseline_child))), flush=True)
        return
    if args.read_child:
        print(json.dumps(read_child(json.loads(args.read_child))), flush=True)
        return
    work = args.work / f"n{args.count}"
    work.mkdir(parents=True, exist_ok=True)
    images, annotations = make_coco(args.work, args.count, args.seed)
    size = sum(p.stat().st_size for p in images.glob("*/*.jpg"))
    print(f"{args.count} photos, {size / 1e6:,.0f} MB in {images}; boxes in {annotations}")
    result = {"machine": machine(), "argv": sys.argv[1:], "bytes": size}
    if args.profile:
        result["profile"] = profile(work, images, annotations, args.count)
        name = "detection_profile.json"
    elif args.read:
        cores = [int(c) for c in args.cores.split(",")]
        result["read"] = bench_read(work, images, annotations, args.repeats, cores)
        name = "detection_read.json"
    else:
        result["convert"] = bench_convert(work, images, annotations, args.count, args.repeats)
        name = "detection_convert.json"
    result["machine"]["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"json: {RESULTS / name}")


if __name__ == "__main__":
    main()
