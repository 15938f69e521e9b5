"""PyTorch-side readers compared in one run: CPU time per image and wall time.

    .venv-torch/bin/python benchmarks/bench_torch.py [--work /tmp/tfrt-torch] [--repeats 3]
        [--digits 60000] [--photos 2000] [--only raw,png,photos] [--arms NAME,...]
        [--cores 1] [--workers 0] [--torchvision-python PATH] [--json FILE]

Data: ``tfrecord_tools.sample`` digits (28x28 gray PNG files) converted twice, as PNG
records (``--encoding keep``) and as raw pixels (``--encoding raw``), and sample photos
(500x375, 90 % JPEG) converted as they are, read at 224x224. Batches of 256 digits, 32
photos, shuffled. Every arm runs in a fresh process of its own, pinned to ``--cores``
cores (``os.sched_setaffinity``; torch, DALI and our readers held to as many threads), the
page cache warm; the arms are interleaved (each repeat runs every arm once, in a rotated
order) and the figures are medians over ``--repeats``. Each process reads a few batches
first (imports, indexes, lazy state), then one timed epoch. CPU time counts every thread
and worker process (``getrusage`` of the process and its waited-for children): the
figure that holds on a shared machine.

Arms (each where it applies):

- ``item``: ``TFRecordMapDataset`` in a ``DataLoader``, one index at a time (the dataset's
  ``__getitems__`` hidden: the map-style path before batched fetch).
- ``getitems``: the same with torch's batched fetch (``__getitems__``: one read per
  contiguous run, raw pixels of one shape as one array slice), then ``default_collate``.
- ``sampler``: the same reads with a ``BatchSampler`` as the sampler (``batch_size=None``):
  ``ds[[i, j, ...]]`` returns the batch stacked, no tensor per image.
- ``batches``: ``TFRecordDataSource.batches`` (whole shards, shard-local shuffle).
- ``index``: ``src[i]`` in random order, no DataLoader (PNG digits by index).
- ``grain-item``: ``grain.MapDataset.source(src).shuffle(seed).batch(B)``;
  ``grain-batched``: ``GrainSource.batched(B, seed=...)``.
- ``*-plain``: the same in a process where OpenCV (the ``fast`` extra) cannot be imported:
  what a plain ``pip install tfrecord-tools`` gives (pyspng and simplejpeg, Pillow's
  resize); ``*-pillow``: pyspng and simplejpeg hidden too: Pillow only, as where their
  wheels do not exist (pyspng: Intel Macs).
- ``tfrecord``: the ``tfrecord`` package (pip install tfrecord), its ``TFRecordDataset``
  per shard in a ``DataLoader`` (a shuffle queue of one batch), decoding with our
  decoder (``decode_fields``): the same decode, its reading and parsing (no CRC checks).
  It runs in a process without TensorFlow (both register ``tensorflow.Example`` with
  protobuf, which then fails).
- ``imagefolder``: torchvision's ``ImageFolder`` over the image files (Pillow decode;
  ``Resize((224, 224))`` for photos), in a ``DataLoader``. PyPI's torchvision needs
  PyPI's torch, not the CPU build in ``.venv-torch``: give ``--torchvision-python`` a
  Python that has both (benchmarks/README.md says how); missing, the arm is skipped.
- ``dali``: NVIDIA DALI on the CPU (``device_id=None``): ``readers.tfrecord`` over our
  ``.idx`` files, ``decoders.image`` (raw digits: a reshape; photos: ``resize`` to 224),
  through ``DALIGenericIterator``; skipped with a note when ``nvidia.dali`` is missing.

Also ``--child ARM ...``: one arm in this process, printing one JSON line (how the parent
runs each arm).
"""

from __future__ import annotations

import argparse
import gc
import importlib.abc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
FAST_MODULES = ("pyspng", "simplejpeg", "cv2")
#: Modules hidden in an arm, by its suffix.
HIDDEN = {"-pillow": FAST_MODULES, "-plain": ("cv2",)}
BATCH = {"raw": 256, "png": 256, "photos": 32}
ARMS = {
    "raw": [
        "item", "getitems", "sampler", "batches", "grain-item", "grain-batched", "tfrecord",
        "dali",
    ],
    "png": [
        "item", "getitems", "sampler", "getitems-pillow", "batches", "index", "index-pillow",
        "grain-item", "grain-batched", "tfrecord", "imagefolder", "dali",
    ],
    "photos": [
        "item", "getitems", "sampler", "getitems-plain", "getitems-pillow", "batches",
        "grain-item", "grain-batched", "tfrecord", "imagefolder", "dali",
    ],
}  # fmt: skip
#: The ratios printed under each table: (ours, peer), CPU time per image.
COMPARED = [
    ("getitems", "dali"), ("getitems", "tfrecord"), ("sampler", "dali"),
    ("sampler", "tfrecord"), ("grain-batched", "dali"), ("grain-batched", "tfrecord"),
    ("grain-batched", "grain-item"),
]  # fmt: skip
#: Worker processes apply to the DataLoader arms only.
LOADER_ARMS = {
    "item", "getitems", "sampler", "getitems-plain", "getitems-pillow", "tfrecord", "imagefolder"
}  # fmt: skip


# --------------------------------------------------------------------------- the child


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes ``modules`` unimportable, as in an install without them."""

    def __init__(self, modules: tuple[str, ...]):
        self.modules = modules

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in self.modules:
            raise ImportError(f"{name}: not installed (hidden in this arm)")
        return None


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _count(batch) -> int:
    if isinstance(batch, list) and batch and isinstance(batch[0], dict):  # DALI's iterator
        return sum(int(part["labels"].shape[0]) for part in batch)
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return len(batch[1]) if hasattr(batch[1], "__len__") else 1
    return 1


def _options(kind: str) -> dict:
    return {"channels": 3, "image_size": 224} if kind == "photos" else {"channels": 1}


def _loader(ds, args, seed: int, **kw):
    import torch

    return torch.utils.data.DataLoader(
        ds,
        batch_size=args.batch,
        num_workers=args.workers,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


def _arm_ours(args, seed: int):
    from tfrecord_tools.access.torch import TFRecordMapDataset

    class PerItem(TFRecordMapDataset):
        __getitems__ = None

    if args.child == "sampler":
        import torch
        from torch.utils.data import BatchSampler, RandomSampler

        ds = TFRecordMapDataset(args.data, **_options(args.kind))
        order = RandomSampler(ds, generator=torch.Generator().manual_seed(seed))
        batches = BatchSampler(order, args.batch, drop_last=False)
        return torch.utils.data.DataLoader(
            ds, sampler=batches, batch_size=None, num_workers=args.workers
        )
    kind = PerItem if args.child == "item" else TFRecordMapDataset
    return _loader(kind(args.data, **_options(args.kind)), args, seed, shuffle=True)


def _arm_batches(args, seed: int):
    import torch

    import tfrecord_tools as tt

    src = tt.TFRecordDataSource(args.data, **_options(args.kind))
    for images, labels in src.batches(args.batch, shuffle=True, seed=seed):
        yield torch.from_numpy(images), torch.from_numpy(labels)


def _arm_index(args, seed: int):
    import numpy as np

    import tfrecord_tools as tt

    src = tt.TFRecordDataSource(args.data, **_options(args.kind))
    for i in np.random.default_rng(seed).permutation(len(src)).tolist():
        yield src[i]


def _arm_grain(args, seed: int):
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource(args.data, **_options(args.kind))
    if args.child == "grain-batched":
        ds = src.batched(args.batch, seed=seed)
    else:
        import grain

        ds = grain.MapDataset.source(src).shuffle(seed=seed).batch(args.batch)
    return (ds[b] for b in range(len(ds)))


def _arm_tfrecord(args, seed: int):
    import numpy as np
    import torch
    from tfrecord.torch.dataset import TFRecordDataset

    import tfrecord_tools as tt
    from tfrecord_tools.access.decode import decode_fields
    from tfrecord_tools.access.parse import ImageFields, field_spans

    assert "tensorflow" not in sys.modules, "the tfrecord package cannot share TF's process"
    options = _options(args.kind)
    size = options.get("image_size")
    size = (size, size) if size else None
    src = tt.TFRecordDataSource(args.data)
    ints = ("image/height", "image/width", "image/channels", "image/class/label")
    present = {k.decode() for k in field_spans(src.read_record(0)[0])}
    description = {"image/encoded": "byte", "image/format": "byte"}
    description |= {k: "int" for k in ints if k in present}

    def decode(features: dict) -> tuple:
        fields = ImageFields(
            features["image/encoded"],
            bytes(features["image/format"]).decode(),
            *(int(features[k][0]) if k in features else 0 for k in ints),
        )
        image = decode_fields(fields, channels=options["channels"], image_size=size)
        return torch.from_numpy(image), fields.label

    np.random.seed(seed)  # its shuffle queue draws from numpy's global generator
    index = args.workers > 0  # it splits a shard among workers by its index file
    parts = [
        TFRecordDataset(f, f"{f}.idx" if index else None, description, args.batch, decode)
        for f in src.files
    ]
    return _loader(torch.utils.data.ChainDataset(parts), args, seed)


def _arm_imagefolder(args, seed: int):
    from PIL import Image
    from torchvision import datasets, transforms

    if args.kind == "photos":
        transform = transforms.Compose([transforms.Resize((224, 224)), transforms.PILToTensor()])
        loader = datasets.folder.pil_loader
    else:

        def loader(path: str) -> Image.Image:
            with Image.open(path) as image:
                return image.convert("L")

        transform = transforms.PILToTensor()
    ds = datasets.ImageFolder(args.files, transform=transform, loader=loader)
    return _loader(ds, args, seed, shuffle=True)


def _arm_dali(args, seed: int):
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali import tfrecord as tfrec
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    import tfrecord_tools as tt

    files = tt.TFRecordDataSource(args.data).files

    @pipeline_def(batch_size=args.batch, num_threads=args.cores, device_id=None, seed=seed)
    def pipeline():
        features = fn.readers.tfrecord(
            path=files,
            index_path=[f"{f}.idx" for f in files],
            features={
                "image/encoded": tfrec.FixedLenFeature((), tfrec.string, ""),
                "image/class/label": tfrec.FixedLenFeature([1], tfrec.int64, -1),
            },
            random_shuffle=True,
            name="Reader",
        )
        encoded = features["image/encoded"]
        if args.kind == "raw":
            images = fn.reshape(encoded, shape=[28, 28, 1])
        elif args.kind == "png":
            images = fn.decoders.image(encoded, device="cpu", output_type=types.GRAY)
        else:
            images = fn.decoders.image(encoded, device="cpu", output_type=types.RGB)
            images = fn.resize(images, resize_x=224, resize_y=224)
        return images, features["image/class/label"]

    pipe = pipeline()
    pipe.build()
    return DALIGenericIterator(
        [pipe], ["images", "labels"], reader_name="Reader",
        last_batch_policy=LastBatchPolicy.PARTIAL,
    )  # fmt: skip


def _epoch(args, seed: int):
    arm = args.child
    if arm in ("item", "getitems", "sampler"):
        return _arm_ours(args, seed)
    return {
        "batches": _arm_batches,
        "index": _arm_index,
        "grain-item": _arm_grain,
        "grain-batched": _arm_grain,
        "tfrecord": _arm_tfrecord,
        "imagefolder": _arm_imagefolder,
        "dali": _arm_dali,
    }[arm](args, seed)


def child(args) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(cpus[-args.cores :]))
    for suffix, modules in HIDDEN.items():
        if args.child.endswith(suffix):
            sys.meta_path.insert(0, _Hidden(modules))
            args.child = args.child.removesuffix(suffix)
    import torch

    torch.set_num_threads(args.cores)
    warm = _epoch(args, seed=args.seed + 1000)
    for n, _ in enumerate(warm):
        if n == 2:
            break
    del warm
    gc.collect()  # a broken-off DataLoader iterator joins its workers here
    if args.child == "dali":  # DALI's iterator is the epoch: build it before the clock
        epoch = _epoch(args, seed=args.seed)
    cpu, wall = _cpu_seconds(), time.perf_counter()
    if args.child != "dali":
        epoch = _epoch(args, seed=args.seed)
    images = sum(_count(batch) for batch in epoch)  # an exhausted DataLoader joins its workers
    cpu = _cpu_seconds() - cpu
    wall = time.perf_counter() - wall
    fast = [m for m in FAST_MODULES if m in sys.modules]
    print(json.dumps({"images": images, "cpu": cpu, "wall": wall, "fast": fast}))


# --------------------------------------------------------------------------- the parent


def _data(work: Path, digits: int, photos: int) -> dict[str, tuple[Path, Path]]:
    """{kind: (converted dataset, the image files)}, made once under ``work``."""
    import tfrecord_tools as tt
    from tfrecord_tools import sample

    def converted(files: Path, out: Path, encoding: str) -> Path:
        if not (out / "dataset.json").exists():
            tt.convert_image_folder(files, out, encoding=encoding, quiet=True, overwrite=True)
        return out

    made = {}
    digit_files = sample.make_digits(work / "digits", count=digits, workers=2)
    made["png"] = (converted(digit_files, work / f"digits-png-{digits}", "keep"), digit_files)
    made["raw"] = (converted(digit_files, work / f"digits-raw-{digits}", "raw"), digit_files)
    photo_files = sample.make_photos(work / "photos", count=photos, workers=2)
    made["photos"] = (converted(photo_files, work / f"photos-{photos}", "keep"), photo_files)
    return made


def _warm(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


def _imports(python: str, module: str) -> str | None:
    """None when ``python`` imports ``module``, else the last line of its error."""
    done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def _available(args) -> tuple[dict[str, str], dict[str, str]]:
    """{arm: python to run it} and {arm: why it is skipped}."""
    pythons, skipped = {}, {}
    for arm, module, python in [
        ("grain-item", "grain", sys.executable),
        ("grain-batched", "grain", sys.executable),
        ("tfrecord", "tfrecord.torch.dataset", sys.executable),
        ("dali", "nvidia.dali.plugin.pytorch", sys.executable),
        ("imagefolder", "torchvision", args.torchvision_python or sys.executable),
    ]:
        why = _imports(python, module)
        if why is None:
            pythons[arm] = python
        else:
            skipped[arm] = f"{module} does not import in {python}: {why}"
    return pythons, skipped


def _run(python: str, arm: str, kind: str, data: Path, files: Path, args, seed: int) -> dict:
    command = [
        python, str(HERE), "--child", arm, "--kind", kind, "--data", str(data),
        "--files", str(files), "--batch", str(BATCH[kind]), "--seed", str(seed),
        "--cores", str(args.cores), "--workers", str(args.workers if arm in LOADER_ARMS else 0),
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"arm {arm} on {kind} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-torch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--digits", type=int, default=60000)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--only", default="raw,png,photos")
    parser.add_argument("--arms", default=None, help="only these arms (comma-separated)")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--torchvision-python", default=None)
    parser.add_argument("--json", default=None, help="write every run's figures here")
    # the child's own arguments
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--files", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in args.only.split(",") if k]
    wanted = set(args.arms.split(",")) if args.arms else None
    data = _data(work, args.digits, args.photos)
    pythons, skipped = _available(args)
    plan = []  # (kind, arm, python)
    for kind in kinds:
        for arm in ARMS[kind]:
            if wanted is not None and arm not in wanted:
                continue
            base = arm.removesuffix("-pillow").removesuffix("-plain")
            base = "grain-item" if base.startswith("grain") else base
            if base in skipped or arm in skipped:
                continue
            plan.append((kind, arm, pythons.get(arm, pythons.get(base, sys.executable))))
    print(" ".join([Path(sys.executable).name, *sys.argv]))
    print(
        f"{len(os.sched_getaffinity(0))} cpus here, each arm pinned to {args.cores} core(s), "
        f"DataLoader workers {args.workers}, medians of {args.repeats} interleaved runs"
    )
    for arm, why in sorted(skipped.items()):
        print(f"skipped {arm}: {why}")
    for kind in kinds:
        _warm(data[kind][0])
        _warm(data[kind][1])
    runs: dict[tuple[str, str], list[dict]] = {(k, a): [] for k, a, _ in plan}
    for repeat in range(args.repeats):
        shift = repeat % max(len(plan), 1)
        for kind, arm, python in plan[shift:] + plan[:shift]:
            result = _run(python, arm, kind, *data[kind], args, seed=repeat)
            runs[kind, arm].append(result)
            per_image = result["cpu"] / result["images"] * 1e6
            rate = result["images"] / result["wall"]
            print(
                f"  run {repeat + 1}: {kind:6s} {arm:14s} {per_image:9.1f} us/image CPU, "
                f"{rate:9.0f} images/s",
                flush=True,
            )
    _report(kinds, plan, runs)
    if args.json:
        rows = [{"kind": k, "arm": a, "runs": r} for (k, a), r in runs.items()]
        Path(args.json).write_text(json.dumps(rows, indent=1))


def _report(kinds: list[str], plan: list, runs: dict) -> None:
    for kind in kinds:
        arms = [arm for k, arm, _ in plan if k == kind]
        if not arms:
            continue
        cpu = {
            a: statistics.median(r["cpu"] / r["images"] * 1e6 for r in runs[kind, a]) for a in arms
        }
        rate = {a: statistics.median(r["images"] / r["wall"] for r in runs[kind, a]) for a in arms}
        images = {r["images"] for a in arms for r in runs[kind, a]}
        print(f"\n{kind} ({', '.join(map(str, sorted(images)))} images, batch {BATCH[kind]}):")
        print(f"  {'arm':14s} {'CPU us/image':>13s} {'images/s':>10s}  vs item (CPU)")
        for arm in arms:
            ratio = f"{cpu['item'] / cpu[arm]:.2f}x" if "item" in cpu else ""
            fast = runs[kind, arm][0].get("fast", [])
            decoders = "" if kind == "raw" or arm in ("dali", "imagefolder") else (
                f"  [{'+'.join(fast) or 'Pillow only'}]"
            )  # fmt: skip
            print(f"  {arm:14s} {cpu[arm]:13.1f} {rate[arm]:10.0f}  {ratio:>8s}{decoders}")
        for ours, peer in COMPARED:
            if ours in cpu and peer in cpu:
                print(f"  {ours} / {peer}, CPU per image: {cpu[ours] / cpu[peer]:.2f}")


if __name__ == "__main__":
    main()
