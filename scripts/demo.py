"""The README's main job: make sample images, convert them, read them back, summarise, then
measure: the short benchmark (raw files vs TFRecords vs Keras' loader vs a hand-written
tf.data pipeline, images/s and CPU time per image, with a bar plot) on the same data.

Run through ``bash scripts/demo.sh`` (which makes the environment first). Everything goes
to ./demo (or the folder given); a rerun reuses the sample images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tfrecord_tools import convert_image_folder
from tfrecord_tools.sample import make_photos


def read_back(out: Path) -> dict[str, int]:
    """Decode every record through the project's tf.data reader; check counts."""
    from tfrecord_tools.read.pipeline import make_dataset

    manifest = json.loads((out / "dataset.json").read_text())
    counts = {}
    for split, info in manifest["splits"].items():
        ds = make_dataset(out, split=split, batch_size=32, image_size=224)
        counts[split] = sum(int(images.shape[0]) for images, _ in ds)
        if counts[split] != info["num_examples"]:
            raise SystemExit(
                f"{split}: read {counts[split]} images, manifest says {info['num_examples']}"
            )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", default="demo", help="where to work (default: demo)")
    parser.add_argument("--count", type=int, default=400, help="sample images (default: 400)")
    parser.add_argument("--no-bench", action="store_true", help="skip the short benchmark")
    args = parser.parse_args()
    work = Path(args.folder)
    t = time.monotonic()
    images = make_photos(work / "images", count=args.count, seed=0, workers=2)
    print(
        f"sample images: {args.count} photo-like JPEG/PNG in {images} "
        f"({time.monotonic() - t:.1f} s)"
    )
    summary = convert_image_folder(
        images, work / "tfrecords", name="photos", split="train=0.9,validation=0.1", overwrite=True
    )
    print(summary.format_table())
    t = time.monotonic()
    counts = read_back(work / "tfrecords")
    print(
        f"read back with make_dataset: {counts} images decoded and resized to 224x224 in "
        f"{time.monotonic() - t:.1f} s; counts match the manifest"
    )
    if not args.no_bench:
        measure(work)


def measure(work: Path) -> None:
    """The short benchmark on the demo's images and shards: one process per cell, one cell
    per source (TFDS's too where it is installed)."""
    from tfrecord_tools.bench import run_benchmark

    print("\nshort benchmark (one repeat per cell, for a first look; see benchmarks/README.md):")
    report = run_benchmark(  # converts the images again (timed) so all sources read one set
        image_dir=work / "images",
        out=work / "bench",
        image_size=224,
        short=True,
    )
    report.print_table()
    if report.failed:
        raise SystemExit(f"{len(report.failed)} benchmark cell(s) failed: see {work / 'bench'}")


if __name__ == "__main__":
    main()
