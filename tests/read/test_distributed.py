"""Reading past one process: tf.data service (a dispatcher and two workers, each in its own
process, on localhost) and per-host sharding in two separate processes.

Every record carries its id in its first two pixels, so deliveries can be counted exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from tfrecord_tools import convert_mnist
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.read.service import ServerProcess, start_local_service

from ..helpers import write_mnist

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read.pipeline import make_dataset  # noqa: E402

N = 600  # records in train; ids 0..599


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """An MNIST-format dataset (raw pixels, 6 train shards) whose image i holds i."""
    src = tmp_path_factory.mktemp("numbered-src")
    splits = {}
    for split, n in (("train", N), ("test", 10)):
        pixels = np.zeros((n, 28, 28), np.uint8)
        pixels[:, 0, 0], pixels[:, 0, 1] = np.divmod(np.arange(n), 256)
        splits[split] = (pixels, np.arange(n) % 10)
    write_mnist(src, splits)
    out = tmp_path_factory.mktemp("numbered")
    convert_mnist(src, out, encoding="raw", shards=7, workers=1, quiet=True)
    return out


def _ids(ds) -> Counter:
    got: Counter = Counter()
    for images, _ in ds:
        pixels = images.numpy().reshape(len(images), -1)
        got.update((pixels[:, 0].astype(int) * 256 + pixels[:, 1]).tolist())
    return got


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A dispatcher (fault tolerant: it journals to a work dir) and two workers, separate
    processes on localhost ports; stopped after."""
    journal = tmp_path_factory.mktemp("dispatcher-journal")
    # ready when the servers say so (their lines), within the module's generous bound: a
    # busy machine takes minutes to import TensorFlow in three processes
    address, servers = start_local_service(2, work_dir=str(journal))
    assert servers[0].seen[0].endswith("(fault tolerant)")
    assert address.startswith("grpc://localhost:")
    try:
        yield address, servers
    finally:
        for server in servers:
            server.terminate()
        codes = [server.stop() for server in servers]
    assert codes == [0, 0, 0], [s.seen for s in servers]
    for server in servers:
        server.wait_for(f"{server.seen[0].split()[0]} stopped", timeout=5)
    assert any(journal.rglob("*")), "the dispatcher wrote no journal"


@pytest.mark.parametrize(
    "options",
    [{}, {"shuffle": True, "seed": 1, "cycle_length": 3}, {"shuffle": True, "repeat": 2}],
    ids=["plain", "shuffled-interleave", "shuffled-twice"],
)
def test_distributed_epoch_delivers_every_record_once(numbered, service, options):
    address, _ = service
    passes = options.get("repeat", 1)
    ds = make_dataset(numbered, batch_size=32, channels=1, service=address, **options)
    assert _ids(ds) == Counter({i: passes for i in range(N)})


def test_parallel_epochs_deliver_every_record_once_per_worker(numbered, service):
    address, _ = service
    ds = make_dataset(
        numbered,
        batch_size=32,
        channels=1,
        service=address,
        processing_mode="parallel-epochs",
        shuffle=True,
    )
    assert _ids(ds) == Counter({i: 2 for i in range(N)})


def test_the_trap_the_reader_avoids_is_real(numbered, service):
    """Control: a shuffle followed by a sequential interleave, the shape the reader never
    builds, does deliver records twice with two workers; the check above can see it."""
    address, _ = service
    files = sorted(str(p) for p in numbered.glob("*-train.tfrecord-*") if p.suffix != ".idx")
    assert len(files) == 6
    ds = make_dataset(files, batch_size=32, channels=1)  # the reader, without the service
    assert _ids(ds) == Counter(range(N))
    records = (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files))
        .interleave(tf.data.TFRecordDataset, cycle_length=2)
        .batch(32)
        .apply(tf.data.experimental.service.distribute("distributed_epoch", address))
    )
    delivered: Counter = Counter()
    for batch in records:
        for record in batch.numpy():
            pixels = tf.train.Example.FromString(record).features.feature["image/encoded"]
            first, second = pixels.bytes_list.value[0][:2]
            delivered[first * 256 + second] += 1
    assert set(delivered) == set(range(N))
    assert set(delivered.values()) == {2}


def test_service_options_are_checked(numbered):
    with pytest.raises(TFRecordToolsError, match="processing_mode must be one of"):
        make_dataset(numbered, service="localhost:1", processing_mode="epochs")
    with pytest.raises(TFRecordToolsError, match="grpc://HOST:PORT"):
        make_dataset(numbered, service="http://localhost:1")
    with pytest.raises(TFRecordToolsError, match="do not mix"):
        make_dataset(numbered, service="localhost:1", num_workers=2, worker_index=0)


def test_serve_refuses_a_busy_port(capsys):
    """gRPC would share the port (SO_REUSEPORT) and start a second dispatcher silently."""
    import socket

    from tfrecord_tools.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "dispatcher", "--port", str(port)]) == 2
    assert f"cannot start the dispatcher on port {port}: Address already in use" in (
        capsys.readouterr().err
    )


def test_a_server_that_ends_early_is_reported_at_once_with_its_stderr():
    """No wait for the bound: the wait ends when the server does, naming what it waited for
    and quoting what the server said."""
    server = ServerProcess("worker", "--dispatcher", "no-port-here")
    try:
        with pytest.raises(TFRecordToolsError) as info:
            server.wait_for("worker listening on ", what="its 'listening on' line")
    finally:
        code = server.stop()
    assert code == 2
    message = str(info.value)
    assert (
        "serve worker --dispatcher no-port-here: it exited (code 2) while waiting for its "
        "'listening on' line" in message
    )
    assert "service must look like grpc://HOST:PORT or HOST:PORT" in message  # its stderr


def test_a_service_not_ready_in_time_says_what_it_waited_for():
    with pytest.raises(TFRecordToolsError) as info:
        start_local_service(1, timeout=1)  # the dispatcher is still importing TensorFlow
    message = str(info.value)
    assert "the local tf.data service was not ready within 1 s" in message
    assert re.search(r"serve dispatcher --port 0: waited \d+ s for its address line", message)


_READ_PART = """
import json, sys
from tfrecord_tools.read.pipeline import make_dataset
ds = make_dataset(sys.argv[1], batch_size=50, channels=1, shuffle=True, seed=int(sys.argv[2]),
                  num_workers=2, worker_index=int(sys.argv[2]))
ids = []
for images, _ in ds:
    p = images.numpy().reshape(len(images), -1).astype(int)
    ids += (p[:, 0] * 256 + p[:, 1]).tolist()
print(json.dumps(ids))
"""


def test_two_hosts_read_disjoint_parts_that_make_the_whole(numbered):
    """Per-host sharding without a service: two processes, as two hosts would run."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _READ_PART, str(numbered), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    parts = []
    for proc in procs:
        try:  # a generous bound: each process imports TensorFlow, on a machine maybe busy
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        assert proc.returncode == 0, err[-2000:]
        parts.append(json.loads(out))
    assert parts[0] and parts[1]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == list(range(N))
