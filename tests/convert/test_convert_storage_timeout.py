"""A bucket that goes away during a conversion holds it for a bounded time: its requests give up
after ``--storage-timeout`` / ``$TFRECORD_TOOLS_STORAGE_TIMEOUT`` seconds without progress
(gcsfs alone retries each request for ~30 s), the command exits 2 naming the object and
saying how to go on, and a rerun finishes; a bucket that no longer exists is named as such.
Real servers on localhost (``tests/buckets.py``)."""

from __future__ import annotations

import pytest

from tfrecord_tools import convert_image_folder, storage, verify
from tfrecord_tools.cli import main
from tfrecord_tools.convert.sources.image_folder import FolderShard
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.storage.fs import STORAGE_TIMEOUT_VARIABLE, storage_timeout, time_limit

OPTIONS = {"shards": 4, "workers": 1, "quiet": True}


#: seed 1: no shard ends in \r (gcp-storage-emulator drops such a last byte, see buckets.py)
ARGS = ["--shards", "4", "--workers", "1", "--seed", "1"]


def stop_after_the_first_shard(server, monkeypatch) -> None:
    """Stop ``server`` as the second shard job (of jobs run in this process, workers=1)
    starts: the first shard is in the bucket, the second one's upload is the first request
    to meet no server."""
    jobs = []
    real_items = FolderShard.items

    def stop_then_items(self):
        jobs.append(self)
        if len(jobs) == 2:
            server.stop()
        yield from real_items(self)

    monkeypatch.setattr(FolderShard, "items", stop_then_items)


def test_gcs_gone_mid_conversion_gives_up_after_the_bound(
    gcs_server, clean_folder, monkeypatch, capsys
):
    """gcsfs retries a refused connection six times with ~30 s of back-off: the bound (2 s
    here, from the environment) cuts that short; the emulator keeps its buckets in memory,
    so once it is back the bucket is gone, and the rerun says so."""
    bucket = gcs_server.new_bucket()
    out = storage.join(bucket, "out")
    monkeypatch.setenv(STORAGE_TIMEOUT_VARIABLE, "2")
    stop_after_the_first_shard(gcs_server, monkeypatch)
    argv = ["convert", "images", str(clean_folder), out, *ARGS]
    try:
        code = main([*argv, "-q"])
        err = capsys.readouterr().err
    finally:
        gcs_server.start()  # waits until the emulator answers
    monkeypatch.undo()
    assert code == 2, err
    assert err.startswith(
        f"tfrecord-tools: error: {out}/images-train.tfrecord-00001-of-00004.idx: cannot "
        "upload: no progress for 2 s"
    ), err
    assert f"{out} holds this conversion unfinished: run the same command again" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tfrecord-tools: error: {bucket}: no such bucket (OUT is {out})"), err
    import fsspec

    fsspec.filesystem("gs").mkdir(bucket.removeprefix("gs://"))
    assert main(argv) == 0, capsys.readouterr().err
    assert verify(out).ok


def test_s3_gone_mid_conversion_is_a_bounded_error_and_the_rerun_resumes(
    s3_server, clean_folder, monkeypatch, capsys
):
    """The command-line option sets the bound; moto keeps its objects across a restart, so
    the rerun keeps the shard written before the server went."""
    out = storage.join(s3_server.new_bucket(), "out")
    stop_after_the_first_shard(s3_server, monkeypatch)
    argv = ["convert", "images", str(clean_folder), out, *ARGS]
    try:
        code = main([*argv, "-q", "--storage-timeout", "3"])
        err = capsys.readouterr().err
    finally:
        s3_server.start()
    monkeypatch.undo()
    assert code == 2, err
    assert err.startswith(f"tfrecord-tools: error: {out}/images-train.tfrecord-00001-of-"), err
    assert f"{out} holds this conversion unfinished: run the same command again" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(argv) == 0
    assert "resumed: 1 shards were already complete" in capsys.readouterr().out
    assert verify(out).ok


def test_a_missing_bucket_is_named(s3_server, clean_folder):
    out = f"s3://no-such-bucket-{id(clean_folder)}/photos"
    with pytest.raises(TFRecordToolsError, match=r"^s3://no-such-bucket-\d+: no such bucket"):
        convert_image_folder(clean_folder, out, **OPTIONS)


def test_the_bound_comes_from_the_option_the_variable_or_the_default(monkeypatch):
    monkeypatch.delenv(STORAGE_TIMEOUT_VARIABLE, raising=False)
    assert storage_timeout() == 60
    monkeypatch.setenv(STORAGE_TIMEOUT_VARIABLE, "7.5")
    assert storage_timeout() == 7.5
    with time_limit(3):
        assert storage_timeout() == 3
        with time_limit(None):
            assert storage_timeout() == 3
    assert storage_timeout() == 7.5
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(STORAGE_TIMEOUT_VARIABLE, bad)
        with pytest.raises(TFRecordToolsError, match=f"{STORAGE_TIMEOUT_VARIABLE}='{bad}'"):
            storage_timeout()
