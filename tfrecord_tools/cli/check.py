"""``tfrecord-tools inspect|count|verify|repair|index|tfds-metadata``: the tools for existing
TFRecords."""

from __future__ import annotations

import argparse
import json

EXIT_PROBLEMS = 1


def register(commands) -> None:
    """inspect, count, verify, repair, index: the tools for existing TFRecords."""
    paths_help = (
        "a dataset folder, or shard files / quoted globs; local paths or URLs "
        "(gs://bucket/ds, s3://bucket/ds, 's3://bucket/ds/*-train.tfrecord-*')"
    )
    inspect = commands.add_parser(
        "inspect",
        help="show splits, counts, features, classes, image sizes and objects",
        description="Describe a dataset: splits, shards, counts and bytes of every shard; "
        "feature keys, image formats and sizes from a sample of records; for detection "
        "records, each object's class, box and flags.",
    )
    inspect.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.add_argument(
        "--sample-shards",
        type=int,
        default=4,
        metavar="N",
        help="shards to sample, spread over the list (default: 4)",
    )
    inspect.add_argument(
        "--sample-records",
        type=int,
        default=16,
        metavar="N",
        help="records read from the start of each sampled shard (default: 16)",
    )
    inspect.add_argument(
        "--show-records",
        type=int,
        default=8,
        metavar="N",
        help="detection / segmentation records: how many of the sample to list object by "
        "object (class, box, flags) or with their mask (default: 8; 0: none)",
    )
    inspect.add_argument(
        "--grid",
        metavar="FILE.png",
        help="draw a contact sheet instead: a row per class with its first images",
    )
    inspect.add_argument(
        "--per-class",
        type=int,
        default=8,
        metavar="N",
        help="--grid: images per class row (default: 8)",
    )
    inspect.set_defaults(handler=_inspect)

    count = commands.add_parser(
        "count",
        help="count records from the manifest or .idx files",
        description="Count records from the manifest, else the .idx files; shard payloads "
        "are never read.",
    )
    count.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    count.add_argument(
        "--scan",
        action="store_true",
        help="count shards with neither by walking their record headers",
    )
    count.add_argument("--json", action="store_true", help="print JSON instead of text")
    count.set_defaults(handler=_count)

    verify = commands.add_parser(
        "verify",
        help="check record CRCs, file ends, manifest and .idx files",
        description="Check every record's length and data CRC, that files end cleanly, the "
        "manifest's counts, sizes and sha256, and the .idx files. Exit 1 if "
        "anything is wrong.",
    )
    verify.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    verify.add_argument(
        "--workers", type=int, metavar="N", help="files checked at once (default: usable cores)"
    )
    verify.add_argument(
        "--no-sha256",
        dest="sha256",
        action="store_false",
        help="skip the whole-file sha256 (record CRCs are still checked)",
    )
    verify.add_argument(
        "--quiet", "-q", action="store_true", help="print problems only, no summary line"
    )
    verify.set_defaults(handler=_verify)

    repair = commands.add_parser(
        "repair",
        help="copy the records that check out, dropping damaged ones",
        description="Copy SRC (a shard file or a dataset folder) to DST keeping every record "
        "whose CRCs check out, including those after damage; writes .idx files "
        "and, for a folder, a fresh manifest.",
    )
    repair.add_argument("src", metavar="SRC", help="a shard or dataset folder: path or URL")
    repair.add_argument("dst", metavar="DST", help="where the copy goes: path or URL")
    repair.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    repair.set_defaults(handler=_repair)

    index = commands.add_parser(
        "index",
        help="write .idx files for existing shards",
        description="Write SHARD.idx (one 'OFFSET LENGTH' line per record, DALI's format) "
        "for each shard, checking every record's CRCs.",
    )
    index.add_argument("paths", nargs="+", metavar="SHARD", help="shard files, globs or URLs")
    index.set_defaults(handler=_index)

    tfds = commands.add_parser(
        "tfds-metadata",
        help="write TFDS's dataset_info.json and features.json for a converted dataset",
        description="Write the files tfds.builder_from_directory(OUT) needs (dataset_info.json, "
        "features.json, image-class-label.labels.txt) from OUT's dataset.json, for datasets "
        "converted before conversions wrote them; no shard is read. Uncompressed datasets "
        "only: TFDS cannot read GZIP or ZLIB shards.",
    )
    tfds.add_argument("out", metavar="OUT", help="a dataset folder with dataset.json")
    tfds.set_defaults(handler=_tfds_metadata)


def _inspect(args: argparse.Namespace) -> int:
    if args.grid:
        from ..view.sheet import contact_sheet

        print(contact_sheet(args.paths, args.grid, per_class=args.per_class).format_text())
        return 0
    from ..check.inspect import inspect_dataset

    report = inspect_dataset(
        args.paths,
        sample_shards=args.sample_shards,
        sample_records=args.sample_records,
        show_records=args.show_records,
    )
    return _print(report, as_json=args.json)


def _count(args: argparse.Namespace) -> int:
    from ..check.count import count_records

    return _print(count_records(args.paths, scan=args.scan), as_json=args.json)


def _print(report, *, as_json: bool) -> int:
    """A report as text or JSON on stdout."""
    print(
        json.dumps(report.to_json(), indent=2, ensure_ascii=False)
        if as_json
        else report.format_text()
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ..check.verify import verify

    report = verify(args.paths, workers=args.workers, sha256=args.sha256)
    for problem in report.problems:
        print(problem)
    if not args.quiet:
        print(report.summary())
    return 0 if report.ok else EXIT_PROBLEMS


def _repair(args: argparse.Namespace) -> int:
    from ..check.repair import repair

    print(repair(args.src, args.dst, overwrite=args.overwrite).format_text())
    return 0


def _index(args: argparse.Namespace) -> int:
    from ..check.index import index_shards

    for result in index_shards(args.paths):
        print(f"{result.index}: {result.records:,} records")
    return 0


def _tfds_metadata(args: argparse.Namespace) -> int:
    from ..format.manifest import read_manifest
    from ..format.tfds import tfds_notes, write_tfds_metadata

    manifest = read_manifest(args.out)
    for path in write_tfds_metadata(args.out, manifest):
        print(path)
    for note in tfds_notes(manifest):
        print(f"note: {note}")
    return 0
