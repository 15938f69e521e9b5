"""Run a conversion's shard jobs on Apache Beam instead of local worker processes.

The launcher lists the source, plans the shards and writes the manifest exactly as the local
engine does (``convert.api``); Beam only runs the shard jobs: ``Create(jobs) -> Reshuffle ->
write one shard each``. Each job writes its shard under a temporary name, renames it, writes
its index and leaves its result in the output's work folder; once the pipeline is done the
launcher collects those results and writes ``dataset.json`` last. So the output is the same,
byte for byte, as the local engine's, and an interrupted Beam run resumes like a local one.

Workers open the source images and write the shards by path or URL: SRC and OUT may be
bucket URLs (``gs://``, ``s3://``), which every worker opens itself through the storage seam
(no mount; each worker writes its shard locally and uploads it whole). Local paths on a
distributed runner (Dataflow, Flink, Spark) must be on a filesystem every worker and the
launcher mount at the same path (NFS, a FUSE mount). ``memory://`` is one process's own:
the caller then runs Beam with one worker, in memory (``workers=1``).

Apache Beam is an optional extra: ``pip install "tfrecord-tools[beam]"``. Locally the
default runner is Beam's ``FnApiRunner`` (``DirectRunner`` first tries to download the
Prism runner binary), with one SDK worker process per conversion worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from .. import storage
from ..errors import ConversionError
from ..format.naming import WORK_DIR
from .jobs import Job, ShardResult, run_job

DEFAULT_RUNNER = "FnApiRunner"
INSTALL_HINT = 'Apache Beam is not installed: pip install "tfrecord-tools[beam]"'


def require_beam():
    try:
        import apache_beam
    except ImportError:
        raise ConversionError(f"--engine beam: {INSTALL_HINT}") from None
    return apache_beam


def _write_shard(job: Job) -> str:
    """One shard, on a Beam worker. Beam retries a failed bundle; a rewrite of the same job
    replaces the shard atomically, so retries are harmless."""
    result = run_job(job, report=lambda images, nbytes: None)
    return result.info.file


def run_jobs(
    jobs: Sequence[Job],
    *,
    out_dir: Path | str,
    runner: str | None = None,
    pipeline_args: Sequence[str] = (),
    workers: int = 1,
    quiet: bool = False,
) -> list[ShardResult]:
    """Run ``jobs`` as one Beam pipeline; return their results (read from the work folder,
    where each job leaves its result). ``pipeline_args`` are Beam's own options
    (``--project=...``, ``--temp_location=...``)."""
    beam = require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = runner or DEFAULT_RUNNER
    args = list(pipeline_args)
    if runner == DEFAULT_RUNNER:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        mode = "multi_processing" if workers > 1 and len(jobs) > 1 else "in_memory"
        args = [
            f"--direct_num_workers={max(1, min(workers, len(jobs)))}",
            f"--direct_running_mode={mode}",
            "--default_sdk_harness_log_level=WARNING",
            *args,
        ]
        beam_runner = FnApiRunner()
    else:
        beam_runner = runner
    if not quiet:
        print(f"beam: {len(jobs)} shard jobs on {runner}", flush=True)
    if not jobs:
        return []
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    ordered = sorted(jobs, key=lambda job: len(job.source), reverse=True)  # largest first
    try:
        with beam.Pipeline(runner=beam_runner, options=PipelineOptions(args)) as pipeline:
            _ = (
                pipeline
                | "shard jobs" >> beam.Create(ordered, reshuffle=False)
                | "spread" >> beam.Reshuffle()
                | "write shards" >> beam.Map(_write_shard)
            )
    except ConversionError:
        raise
    except Exception as e:  # Beam wraps worker errors in its own types
        raise ConversionError(f"Beam pipeline failed on {runner}: {_first_line(e)}") from e
    results = []
    for job in jobs:
        state = storage.join(out_dir, WORK_DIR, f"{job.filename}.json")
        try:
            text = storage.read_text(state)
        except (FileNotFoundError, IsADirectoryError):
            raise ConversionError(
                f"{storage.redact(storage.join(out_dir, job.filename))}: the Beam pipeline "
                "finished without writing this shard; do the workers see OUT at the same path?"
            ) from None
        results.append(ShardResult.from_json(json.loads(text)))
    return results


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    for line in text.splitlines():
        if "ConversionError" in line or "Error:" in line:
            return line.strip()
    return text.splitlines()[0]
