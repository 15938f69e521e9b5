"""Nothing unfinished, mangled or duplicated passes as good data: a full disk, two
conversions into one folder, a killed or interrupted conversion, --overwrite, reruns,
--strict and shard counts.

Signals and SIGKILL need real processes: those tests run ``python -m tfrecord_tools
convert`` on a small generated folder and watch it through ``/proc`` (Linux).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder, verify
from tfrecord_tools.cli import main
from tfrecord_tools.errors import ConversionError
from tfrecord_tools.format.index import index_path
from tfrecord_tools.format.naming import temp_path
from tfrecord_tools.format.writer import ShardWriter

from ..conftest import BAD

linux_only = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="watches processes through /proc"
)
INTERRUPTED = "interrupted; rerun the same command to finish"


def make_folder(root: Path, per_class: int, classes: int = 2, size: int = 64) -> Path:
    """``classes`` folders of ``per_class`` noise PNGs."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png", compress_level=0)
    return root


@pytest.fixture(scope="module")
def busy_folder(tmp_path_factory) -> Path:
    """Enough images that a 2-worker conversion runs for a while (~0.2 s)."""
    return make_folder(tmp_path_factory.mktemp("busy") / "src", per_class=100)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime) of every entry: what a "nothing was rewritten" compares."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()
    }


# --------------------------------------------------------------------------- processes


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tfrecord_tools", *args]


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def workers_of(pid: int) -> list[int]:
    """Child processes of ``pid`` running the same command (forked pool workers)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields is None or fields[1] != str(pid):
            continue
        try:
            if Path(entry.path, "cmdline").read_bytes() == command:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def start_writing(src: Path, out: Path, *args: str) -> tuple[subprocess.Popen, list[int]]:
    """Start a 2-worker conversion of ``src``; return it and its workers' pids as soon as
    both workers exist (retried if it finishes before they are seen)."""
    for _ in range(5):
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.Popen(
            cli("convert", "images", str(src), str(out), "--workers", "2", "--shards", "8", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            workers = workers_of(proc.pid)
            if len(workers) >= 2:
                return proc, workers
            time.sleep(0.0005)
        proc.kill()
        proc.communicate()
    pytest.fail("the conversion ended before its workers were seen, five times")


def end_all(proc: subprocess.Popen, workers: list[int]) -> None:
    """Cleanup after a test: any worker left, then the conversion."""
    for pid in workers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


# --------------------------------------------------------------------------- 1. disk full


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_full_disk_exits_2_naming_the_shard_and_leaves_no_temp_files(
    clean_folder, tmp_path, capsys, compression
):
    """The shard's and the index's temporary files are /dev/full (every write: ENOSPC)."""
    out = tmp_path / "out"
    out.mkdir()
    shard = out / "x-train.tfrecord-00000-of-00002"
    planted = [temp_path(shard), temp_path(index_path(shard))]  # this process writes them
    for link in planted:
        link.symlink_to("/dev/full")
    argv = ["convert", "images", str(clean_folder), str(out), "--name", "x", "--shards", "2"]
    argv += ["--allow-nonempty-out"]  # the two links are not ours
    code = main([*argv, "--workers", "1", "--compression", compression, "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{shard}: cannot write: No space left on device" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(os.path.lexists(p) for p in planted)  # removed, even the index's
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.is_file()] == []
    assert not (out / "dataset.json").exists()


def test_abort_removes_both_temporary_files_when_closing_fails(tmp_path):
    shard = tmp_path / "x-train.tfrecord-00000-of-00001"

    class IndexOnAFullDisk:
        def __init__(self, file):
            self.file = file

        def writelines(self, lines):
            self.file.writelines(lines)

        def close(self):
            self.file.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="the first error") as info, ShardWriter(shard) as writer:
        writer.write(b"record")
        writer._index = IndexOnAFullDisk(writer._index)
        raise OSError(errno.ENOSPC, "the first error")
    assert info.value.strerror == "the first error"  # not replaced by abort's own failure
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_cannot_open_its_index_keeps_no_descriptor_or_file(tmp_path):
    shard = tmp_path / "x-train.tfrecord-00000-of-00001"
    temp_path(index_path(shard)).symlink_to(tmp_path / "no" / "such" / "folder")
    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    with pytest.raises(FileNotFoundError):
        ShardWriter(shard)
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
    assert not temp_path(shard).exists()


# --------------------------------------------------------------------------- 2. one at a time


@linux_only
def test_a_second_conversion_into_the_same_folder_stops_at_once(busy_folder, tmp_path, capsys):
    out = tmp_path / "out"
    first, workers = start_writing(busy_folder, out, "-q")
    try:
        os.kill(first.pid, signal.SIGSTOP)  # holds OUT, mid-way
        code = main(["convert", "images", str(busy_folder), str(out), "--shards", "3", "-q"])
        err = capsys.readouterr().err
        assert code == 2
        assert f"another conversion into this folder is running (process {first.pid})" in err
        os.kill(first.pid, signal.SIGKILL)  # kill -9: its lock goes with it
        first.communicate(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        code = main(["convert", "images", str(busy_folder), str(out), "--shards", "3", "-q"])
        assert code == 0, capsys.readouterr().err
        assert verify(out).ok
        assert sorted(p.name for p in out.glob("*.idx")) == [
            f"src-train.tfrecord-{i:05d}-of-00003.idx" for i in range(3)
        ]  # the first run's 8-shard plan left nothing behind
    finally:
        end_all(first, workers)


# --------------------------------------------------------------------------- 3. SIGKILL


@linux_only
def test_workers_end_when_the_conversion_is_killed(busy_folder, tmp_path):
    out = tmp_path / "out"
    proc, workers = start_writing(busy_folder, out, "-q")
    try:
        os.kill(proc.pid, signal.SIGKILL)
        # EOF on the pipes: no orphaned worker holds the caller's stdout and stderr
        proc.communicate(timeout=10)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [p for p in workers if alive(p)] == []
    finally:
        end_all(proc, workers)
    # and the same command finishes the conversion
    assert main(["convert", "images", str(busy_folder), str(out), "--shards", "8", "-q"]) == 0
    assert verify(out).ok


# --------------------------------------------------------------------------- 4. signals


@linux_only
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_as_the_command_starts_gives_the_message(busy_folder, tmp_path, signum, code):
    """Sent as soon as the handlers are installed: while the command is still importing."""
    proc = subprocess.Popen(
        cli("convert", "images", str(busy_folder), str(tmp_path / "out"), "-q"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not caught_signals(proc.pid) & (1 << (signal.SIGTERM - 1)):
            assert proc.poll() is None and time.monotonic() < deadline, "no SIGTERM handler"
            time.sleep(0.0002)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
    finally:
        end_all(proc, [])
    assert proc.returncode == code, err
    assert INTERRUPTED in err and "Traceback" not in err


def test_ctrl_c_while_the_command_loads_is_handled(monkeypatch, capsys):
    import tfrecord_tools.cli as cli_module

    def loading():
        raise KeyboardInterrupt  # as if Ctrl-C came while the commands were imported

    monkeypatch.setattr(cli_module, "build_parser", loading)
    try:
        code = main(["convert", "images", "SRC", "OUT"])
    except KeyboardInterrupt:  # (would end the whole test session)
        pytest.fail("the interrupt escaped main()")
    assert code == 130
    assert INTERRUPTED in capsys.readouterr().err


def test_ctrl_c_inside_a_string_exec_still_exits_130_under_python_m(tmp_path):
    """CPython marks a KeyboardInterrupt that ends a string exec (dataclasses make their
    methods so while modules import) as unhandled; ``python -m`` then died by SIGINT."""
    (tmp_path / "interrupted_cli.py").write_text(
        "import tfrecord_tools.cli as cli\n"
        "def loading():\n"
        "    exec('raise KeyboardInterrupt', {})\n"
        "cli.build_parser = loading\n"
        "raise SystemExit(cli.main(['--version']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "interrupted_cli"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr
    assert INTERRUPTED in proc.stderr


@linux_only
def test_sigterm_while_writing_exits_143_and_the_rerun_finishes(busy_folder, tmp_path):
    out = tmp_path / "out"
    proc, workers = start_writing(busy_folder, out)
    try:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        end_all(proc, workers)
    assert proc.returncode == 143, err
    assert INTERRUPTED in err and "Traceback" not in err
    assert not (out / "dataset.json").exists()
    assert [p.name for p in out.iterdir() if ".tmp-" in p.name] == []  # dropped, not left
    assert main(["convert", "images", str(busy_folder), str(out), "--shards", "8", "-q"]) == 0
    assert verify(out).ok


# --------------------------------------------------------------------------- 5. --overwrite


def test_overwrite_keeps_the_finished_dataset_when_strict_fails(
    image_folder, clean_folder, tmp_path
):
    out = tmp_path / "out"
    convert_image_folder(clean_folder, out, name="pets", shards=2, workers=1, quiet=True)
    before = snapshot(out)
    src = tmp_path / "src"
    shutil.copytree(clean_folder, src)  # one bad image, found only by reading it
    shutil.copy(image_folder / "cats" / "truncated.jpg", src / "dogs" / "truncated.jpg")
    with pytest.raises(ConversionError, match=r"dogs/truncated.jpg: truncated JPEG"):
        convert_image_folder(
            src, out, name="pets", overwrite=True, strict=True, workers=1, quiet=True
        )
    assert snapshot(out) == before
    assert verify(out).ok


def test_overwrite_under_another_name_leaves_only_the_new_dataset(clean_folder, tmp_path):
    out = tmp_path / "out"
    convert_image_folder(clean_folder, out, name="old", shards=2, workers=1, quiet=True)
    (out / "new-train.tfrecord-00007-of-00009").write_bytes(b"a left-over of ours")
    convert_image_folder(
        clean_folder, out, name="new", shards=3, workers=1, quiet=True, overwrite=True
    )
    shards = [f"new-train.tfrecord-{i:05d}-of-00003" for i in range(3)]
    tfds = ["dataset_info.json", "features.json", "image-class-label.labels.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json", "labels.txt", *tfds, *shards, *(s + ".idx" for s in shards)]
    )
    report = verify(out)
    assert report.ok, report.problems


def test_a_users_lookalike_files_are_never_deleted_without_overwrite(clean_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / "mine-train.tfrecord-00000-of-00001"
    theirs.write_bytes(b"the user's own")
    options = {"name": "x", "shards": 2, "workers": 1, "quiet": True, "allow_nonempty_out": True}
    convert_image_folder(clean_folder, out, **options)
    assert theirs.read_bytes() == b"the user's own"
    # one in the way of the plan: an error, not a deletion
    other = tmp_path / "other"
    other.mkdir()
    in_the_way = other / "x-train.tfrecord-00001-of-00002"
    in_the_way.write_bytes(b"the user's own")
    with pytest.raises(ConversionError, match=r"x-train.tfrecord-00001-of-00002.*--overwrite"):
        convert_image_folder(clean_folder, other, **options)
    assert in_the_way.read_bytes() == b"the user's own"
    convert_image_folder(clean_folder, other, overwrite=True, **options)
    assert verify(other).ok


# --------------------------------------------------------------------------- 6. reruns


def test_rerunning_a_finished_conversion_succeeds_without_rewriting(clean_folder, tmp_path, capsys):
    argv = ["convert", "images", str(clean_folder), str(tmp_path), "--shards", "2"]
    assert main([*argv, "--workers", "1"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert main([*argv, "--workers", "2"]) == 0  # same options (workers change no byte)
    assert "already complete" in capsys.readouterr().out
    assert snapshot(tmp_path) == before
    assert main([*argv, "--seed", "3"]) == 2  # other options
    assert "pass --overwrite" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert len(manifest["conversion"]["digest"]) == 64


# --------------------------------------------------------------------------- 7. --strict


def test_strict_names_every_bad_file_and_writes_nothing(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["convert", "images", str(image_folder), str(out), "--strict", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2
    for path, reason in BAD.items():
        assert f"{path}: {reason}" in err
    assert not out.exists()


# --------------------------------------------------------------------------- 8. shard counts


def test_fewer_shards_than_asked_is_said_and_none_holds_one_record(tmp_path, capsys):
    src = make_folder(tmp_path / "src", per_class=5, classes=1, size=8)
    out = tmp_path / "out"
    assert main(["convert", "images", str(src), str(out), "--shards", "8", "--workers", "2"]) == 0
    assert "asked for 8 shards, made 2: 5 examples" in capsys.readouterr().out
    argv = ["convert", "images", str(src), str(tmp_path / "quiet"), "--shards", "8", "-q"]
    assert main(argv) == 0
    assert "asked for 8 shards, made 2: 5 examples" in capsys.readouterr().err  # said anyway
    assert sorted(len(p.read_text().splitlines()) for p in out.glob("*.idx")) == [2, 3]
    summary = convert_image_folder(src, tmp_path / "again", shards=8, workers=1, quiet=True)
    assert summary.notes == ("asked for 8 shards, made 2: 5 examples (at least 2 a shard)",)
