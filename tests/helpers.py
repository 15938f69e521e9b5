"""Reading a converted dataset back without TensorFlow, for assertions."""

from __future__ import annotations

import json
from pathlib import Path

from tfrecord_tools.format.example import decode_example
from tfrecord_tools.format.framing import iter_records


def read_dataset(out: Path) -> dict[str, list[dict]]:
    """{split: [features as {key: first value}]} in shard order, checking every CRC."""
    manifest = json.loads((out / "dataset.json").read_text())
    records: dict[str, list[dict]] = {}
    for split, info in manifest["splits"].items():
        rows = records.setdefault(split, [])
        for shard in info["shards"]:
            for rec in iter_records(out / shard["file"], manifest["compression"]):
                rows.append({k: v[1][0] for k, v in decode_example(rec.data).items()})
    return records
