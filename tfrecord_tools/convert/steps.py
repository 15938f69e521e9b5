"""The steps every conversion shares, whatever its source: plan -> resume -> shard jobs on
an engine -> summary -> labels.txt, TFDS metadata, ``dataset.json`` last (FORMAT.md).

Data flow: a source's labels, sizes and per-shard source maker (``api``) -> **run**: the
shard plan and its fingerprint; a finished conversion of the same plan reported, not
redone; OUT checked (its bucket exists; it is empty, new, or holds a conversion of ours,
unless allowed), locked and prepared (what a rerun keeps); the remaining shards written by
the local or Beam engine; the manifest and its companions published through ``outdir`` (a
local folder, or whole objects in a bucket). From the moment OUT holds the conversion's
work folder, an error says what failed and that the same command finishes the conversion.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConversionError, TFRecordToolsError
from ..format.manifest import write_labels, write_manifest
from ..format.naming import LABELS, MANIFEST
from ..format.tfds import TFDS_FILES, TFDS_OBJECT_LABELS, build_tfds_metadata, tfds_notes
from . import local, outdir, plan, resume
from .jobs import Job, ShardResult
from .summary import ConversionSummary, summarise, summary_of_finished

if TYPE_CHECKING:
    from .api import ShardingOptions

log = logging.getLogger(__name__)


def run(
    *,
    out: Path | str,
    name: str,
    classes: list[str],
    labels: list[int],
    sizes: list[int],
    splits: Mapping[str, Any],
    make_source,
    opts: ShardingOptions,
    identity: Any,
    source_json: dict,
    pre_skipped: list[tuple[str, str]],
    extra: dict,
    desc: str,
    check: Callable[[], None] | None = None,
    max_size: dict[str, int] | None = None,
    in_process: bool = False,
    companions: Mapping[str, str] | None = None,
    tfds: bool = True,
    gather: Callable[[Sequence[ShardResult]], tuple[dict, dict]] | None = None,
) -> ConversionSummary:
    """The steps every source shares: plan, resume, run, labels, manifest.

    ``check`` (``--strict``) runs before OUT is touched: a failed check writes nothing. A
    finished conversion of the same plan in OUT is reported, not redone; one conversion at
    a time writes to OUT (its lock). ``in_process``: the jobs run in this process (SRC or
    OUT is ``memory://``, which other processes do not see). ``companions``: more files of
    the dataset (name -> text), written with the labels, before the manifest; ``tfds``: write
    TFDS's metadata (False: the records are not TFDS's image-classification features).
    ``gather(results)``: what ``source_json`` and ``extra`` keys become once every shard's
    result is in (a source's figures that leave out what its shards skipped). Every error
    is a :class:`ConversionError` (or another ``TFRecordToolsError``); an interrupt stays one.
    """
    start = time.monotonic()
    plans = plan.plan_shards(
        name,
        labels,
        sizes,
        splits=splits,
        seed=opts.seed,
        shards=opts.shards,
        shard_size=opts.shard_size,  # type: ignore[arg-type]
        workers=opts.num_workers,
    )
    del sizes  # the plan has them: not kept (nor inherited by forked workers) while they run
    digest = resume.fingerprint(
        {
            "identity": identity,
            "name": name,
            "seed": opts.seed,
            "compression": opts.compression,
            "plan": [(p.filename, len(p.samples)) for p in plans],
        }
    )
    notes = _shard_notes(plans, opts.shards)
    for note in notes:
        log.warning("%s: %s", name, note)

    def already_complete() -> ConversionSummary | None:
        finished = None if opts.overwrite else resume.finished_conversion(out, digest)
        if finished is None:
            return None
        elapsed = time.monotonic() - start
        notes_then = notes + tuple(tfds_notes(finished))
        return summary_of_finished(out, finished.data, elapsed=elapsed, notes=notes_then)

    try:
        if (summary := already_complete()) is not None:
            return summary
        outdir.check_bucket(out)
        resume.check_out_dir(out, allow_nonempty=opts.allow_nonempty_out)
        if check is not None:
            check()
        with resume.locked(out):
            if (summary := already_complete()) is not None:  # finished while we checked
                return summary
            files = [p.filename for p in plans]
            done = resume.prepare_out_dir(out, name, digest, files, overwrite=opts.overwrite)
            with _unfinished(out):  # from here on OUT holds this conversion, unfinished
                todo = [p for p in plans if p.filename not in done]
                results = list(done.values()) + run_jobs(
                    out, todo, make_source, opts, desc, in_process
                )
                if gather is not None:
                    more_source, more_extra = gather(results)
                    source_json, extra = {**source_json, **more_source}, {**extra, **more_extra}
                summary = summarise(
                    out_dir=out,
                    name=name,
                    classes=classes,
                    results=results,
                    split_order=list(splits),
                    source=source_json,
                    pre_skipped=pre_skipped,
                    compression=opts.compression,
                    elapsed=time.monotonic() - start,
                    resumed=len(done),
                    extra={
                        "seed": opts.seed,
                        **extra,
                        "engine": _engine_json(opts, in_process),
                        "conversion": {"digest": digest},
                    },
                    max_size=max_size,
                )
                _publish(
                    out,
                    classes,
                    summary.manifest,
                    opts.compression,
                    companions or {},
                    tfds=tfds,
                )
    except OSError as e:  # OUT unwritable (before it held anything of this conversion)
        where = e.filename or outdir.shown(out)
        raise ConversionError(f"{where}: {e.strerror or e}") from e
    return replace(summary, notes=notes + tuple(tfds_notes(summary.manifest)))


def _publish(
    out: Path | str,
    classes: list[str],
    manifest: dict,
    compression: str,
    companions: Mapping[str, str],
    *,
    tfds: bool,
) -> None:
    """The files after the shards: labels and companions, TFDS metadata, the manifest
    last; then the work folder goes. A file that cannot be written is named."""
    outdir.publish(out, LABELS, lambda folder: write_labels(folder, classes))
    for name, text in companions.items():
        outdir.write(out, name, text)
    if compression == "none" and tfds:  # TFDS loads it: tfds.builder_from_directory(out)
        for name, text in build_tfds_metadata(manifest).items():
            outdir.write(out, name, text)
    else:  # TFDS cannot read compressed shards: none left from an earlier run
        outdir.remove(out, (*TFDS_FILES, TFDS_OBJECT_LABELS))
    outdir.publish(out, MANIFEST, lambda folder: write_manifest(folder, manifest))  # last
    resume.finish_out_dir(out)


@contextlib.contextmanager
def _unfinished(out: Path | str) -> Iterator[None]:
    """An error once OUT holds this conversion's work folder (anything but an interrupt,
    which says so itself) says what failed, and how to go on: the work folder stays, so
    the same command finishes the conversion once the cause is fixed."""
    try:
        yield
    except Exception as e:
        if isinstance(e, TFRecordToolsError):
            what = str(e)
        elif isinstance(e, OSError):
            what = f"{e.filename or outdir.shown(out)}: {e.strerror or e}"
        else:  # not an error we foresaw: its type says most
            what = f"the conversion failed: {type(e).__name__}: {e}"
        raise ConversionError(
            f"{what}; {outdir.shown(out)} holds this conversion unfinished: run the same "
            "command again once that is fixed, to finish it (the shards already written "
            "are kept); a conversion with other options replaces it"
        ) from e


def run_jobs(
    out: Path | str,
    todo: list[plan.ShardPlan],
    make_source,
    opts: ShardingOptions,
    desc: str,
    in_process: bool = False,
) -> list[ShardResult]:
    """Write the shards of ``todo`` with the chosen engine (``in_process``: one after
    another in this process; Beam's runner then runs in memory)."""
    jobs = [
        Job(p.filename, p.split, str(out), opts.compression, make_source(p), opts.storage_timeout)
        for p in todo
    ]
    if opts.engine == "beam":
        from . import beam

        return beam.run_jobs(
            jobs,
            out_dir=out,
            runner=opts.runner,
            pipeline_args=opts.pipeline_args,
            workers=1 if in_process else opts.num_workers,
            quiet=opts.quiet,
        )
    return local.run_jobs(
        jobs,
        workers=1 if in_process else opts.num_workers,
        quiet=opts.quiet,
        total_images=sum(len(p.samples) for p in todo),
        desc=desc,
    )


def _shard_notes(plans: Sequence[plan.ShardPlan], asked: int | None) -> tuple[str, ...]:
    """Say so when the plan made fewer shards than ``--shards`` asked for."""
    if asked is None or len(plans) >= asked:
        return ()
    examples = sum(len(p.samples) for p in plans)
    return (
        f"asked for {asked} shards, made {len(plans)}: {examples:,} examples "
        f"(at least {plan.MIN_SHARD_RECORDS} a shard)",
    )


def _engine_json(opts: ShardingOptions, in_process: bool = False) -> dict:
    if opts.engine == "beam":
        from .beam import DEFAULT_RUNNER

        return {"name": "beam", "runner": opts.runner or DEFAULT_RUNNER}
    return {"name": "local", "workers": 1 if in_process else opts.num_workers}
