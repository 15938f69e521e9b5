"""The tf.data reader against its peers and its limit, as CPU time per image (issue 23).

    .venv/bin/python benchmarks/bench_peers.py [--count 600] [--rounds 5] [--cores 1,2]
        [--before DIR]      # DIR holds another tfrecord_tools package (e.g. `git archive`
                            # of an older commit): its make_dataset runs as extra arms

Each arm runs in a fresh process pinned to the first N usable CPUs (before TensorFlow is
imported), reads the same converted sample photos (~500x375, 90 % JPEG, 10 % PNG) at
224x224 in batches of 32 twice after a warm-up pass, and answers with the median CPU time
per image (user + sys of every thread, ``resource.getrusage``) and images/s. Arms run
interleaved, round after round, and the table gives medians over rounds: on a shared
machine images/s moves with the load, CPU time per image much less.

Arms: ``limit`` (decode + resize + round in one graph loop over the image bytes already in
memory: no file, no record, no parse), ``handwritten`` (``TFRecordDataset.map(parse +
decode_image + resize + cast).batch``, what a user writes), ``keras``
(``image_dataset_from_directory`` on the image folder, float32), ``tfds``
(``builder_from_directory(...).as_dataset`` + the same resize, when TFDS is importable),
``make_dataset`` (uint8, and ``float32``), and with ``--before`` the same two from DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SIZE = 224


def child(arm: str, data: str, photos: str, passes: int) -> None:
    """One arm in this (pinned) process: prints one JSON line."""
    import resource
    import time

    import tensorflow as tf

    files = sorted(str(p) for p in Path(data).glob("*.tfrecord-*") if p.suffix != ".idx")

    def handwritten(dtype):
        spec = {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        }

        def parse(record):
            f = tf.io.parse_single_example(record, spec)
            image = tf.io.decode_image(f["image/encoded"], channels=3, expand_animations=False)
            image = tf.image.resize(image, (SIZE, SIZE))
            return (image if dtype == "float32" else tf.cast(image + 0.5, tf.uint8)), f[
                "image/class/label"
            ]

        ds = tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(32).prefetch(tf.data.AUTOTUNE)

    def limit():
        from tfrecord_tools.format.example import decode_example
        from tfrecord_tools.format.framing import iter_records

        data = tf.constant(
            [decode_example(r.data)["image/encoded"][1][0] for f in files for r in iter_records(f)]
        )

        @tf.function
        def loop(data):
            n = tf.shape(data)[0]
            out = tf.TensorArray(tf.uint8, size=n, element_shape=[SIZE, SIZE, 3])

            def one(i):
                image = tf.io.decode_image(data[i], channels=3, expand_animations=False)
                return tf.cast(tf.image.resize(image, (SIZE, SIZE)) + 0.5, tf.uint8)

            _, out = tf.while_loop(
                lambda i, _: i < n,
                lambda i, acc: (i + 1, acc.write(i, one(i))),
                (tf.constant(0), out),
                parallel_iterations=1,
            )
            return out.stack()

        class Loop:
            def __iter__(self):
                yield loop(data), None

        return Loop()

    def tfds_arm():
        import tensorflow_datasets as tfds

        builder = tfds.builder_from_directory(data)
        config = tfds.ReadConfig(try_autocache=False)

        def resize(example):
            image = example["image"]["encoded"]
            label = example["image"]["class"]["label"]
            return tf.cast(tf.image.resize(image, (SIZE, SIZE)) + 0.5, tf.uint8), label

        ds = builder.as_dataset(split="train", read_config=config)
        return ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE).batch(32).prefetch(-1)

    def ours(dtype):
        import tfrecord_tools as tt

        return tt.make_dataset(data, batch_size=32, image_size=SIZE, dtype=dtype)

    make = {
        "limit": limit,
        "handwritten": lambda: handwritten("uint8"),
        "keras": lambda: tf.keras.utils.image_dataset_from_directory(
            photos, image_size=(SIZE, SIZE), batch_size=32, shuffle=False, verbose=False
        ).prefetch(tf.data.AUTOTUNE),
        "tfds": tfds_arm,
        "make_dataset": lambda: ours("uint8"),
        "make_dataset float32": lambda: ours("float32"),
    }[arm.removeprefix("before ")]
    ds = make()
    images = sum(int(x.shape[0]) for x, _ in ds)  # warm-up: graphs built, files cached

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu_us, rate = [], []
    for _ in range(passes):
        c, t = cpu(), time.perf_counter()
        for _batch in ds:
            pass
        cpu_us.append((cpu() - c) / images * 1e6)
        rate.append(images / (time.perf_counter() - t))
    result = {"cpu_us": statistics.median(cpu_us), "images_per_s": statistics.median(rate)}
    print(json.dumps({"arm": arm, "images": images, **result}))


def run(arm: str, cores: int, args, before: str | None) -> dict | None:
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # start-up as users have it
    if before is not None:
        env["PYTHONPATH"] = before
    command = [sys.executable, __file__, "--child", json.dumps([cpus, arm, args.data,
               args.photos, args.passes])]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"  {arm} on {cores} core(s) failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/tfrt-bench/peers")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--before", help="a folder holding another tfrecord_tools package")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    work = Path(args.work)
    args.photos, args.data = str(work / "photos"), str(work / "tfrecords")
    tt = "tfrecord_tools"
    subprocess.run([sys.executable, "-m", tt, "make-sample", "photos", args.photos,
                    "--count", str(args.count)], check=True, capture_output=True)  # fmt: skip
    if not (Path(args.data) / "dataset.json").exists():
        subprocess.run([sys.executable, "-m", tt, "convert", "images", args.photos, args.data,
                        "-q"], check=True)  # fmt: skip
    arms = ["limit", "handwritten", "keras", "make_dataset", "make_dataset float32"]
    try:
        import tensorflow_datasets  # noqa: F401

        arms.append("tfds")
    except ImportError:
        print("tfds: not installed here, its arm is left out", file=sys.stderr)
    if args.before:
        arms += ["before make_dataset", "before make_dataset float32"]
    figures: dict[str, dict[str, list[dict]]] = {}
    for cores in (int(c) for c in args.cores.split(",")):
        for _ in range(args.rounds):
            for arm in arms:
                before = args.before if arm.startswith("before ") else None
                result = run(arm, cores, args, before)
                if result is not None:
                    figures.setdefault(str(cores), {}).setdefault(arm, []).append(result)
    table = {}
    print(f"{'cores':>5}  {'arm':28s} {'CPU us/img':>10} {'img/s':>7} {'/ limit':>8}")
    for cores, per_arm in figures.items():
        medians = {
            arm: {k: statistics.median(r[k] for r in rs) for k in ("cpu_us", "images_per_s")}
            for arm, rs in per_arm.items()
        }
        table[cores] = medians
        base = medians.get("limit", {}).get("cpu_us")
        for arm, m in medians.items():
            share = f"{base / m['cpu_us']:.2f}" if base else "-"
            print(f"{cores:>5}  {arm:28s} {m['cpu_us']:10.0f} {m['images_per_s']:7.0f} {share:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": table, "runs": figures}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        cpus, *rest = json.loads(sys.argv[2])
        os.sched_setaffinity(0, cpus)  # before TensorFlow sizes its pools
        child(*rest)
    else:
        main()
