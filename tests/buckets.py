"""Real object-storage servers for the bucket tests, started on free localhost ports and
stopped by the fixtures: S3 through moto's server (``ThreadedMotoServer``), Cloud Storage
through gcp-storage-emulator (a separate process), and fsspec's ``memory://``. Nothing goes
over the network: the fixtures point the libraries at the servers through the same
variables a user sets (``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``).

Each test gets a fresh bucket; ``bucket`` is parametrised over S3 and GCS. Skipped when the
cloud extra is not installed (``pip install -e '.[cloud,test]'``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

_counter = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"no server on port {port} after {timeout} s")


@dataclass
class Server:
    scheme: str  # "s3" | "gs" | "memory"
    port: int | None
    stop: object = None  # callable
    start: object = None  # callable: (re)start on the same port

    def new_bucket(self) -> str:
        """A fresh, empty bucket's URL."""
        name = f"b{os.getpid()}-{next(_counter)}"
        if self.scheme == "memory":
            return f"memory://{name}"
        import fsspec

        fs = fsspec.filesystem(self.scheme, skip_instance_cache=True)
        fs.mkdir(name)
        return f"{self.scheme}://{name}"


def _needs(module: str) -> None:
    pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[cloud,test]'")


def _reset_fsspec() -> None:
    """Forget fsspec's cached file systems (they hold the endpoint they were made with)."""
    import fsspec

    for protocol in ("s3", "gs"):
        with contextlib.suppress(ImportError, ValueError):
            fsspec.get_filesystem_class(protocol).clear_instance_cache()


#: Where the servers listen and what the libraries are told, chosen and set as this module
#: is imported (by conftest, before any test runs): a conversion's worker processes come
#: from a forkserver that may have started in an earlier test, and see the environment of
#: that moment only.
S3_PORT, GCS_PORT = free_port(), free_port()
ENVIRONMENT = {
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "2",
    "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{GCS_PORT}",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    "GOOGLE_CLOUD_PROJECT": "test",
}
os.environ.update(ENVIRONMENT)


@pytest.fixture(scope="session")
def s3_server():
    _needs("s3fs")
    _needs("moto")
    from moto.server import ThreadedMotoServer

    port = S3_PORT
    state = {}

    def start():
        state["server"] = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        state["server"].start()
        _wait_for(port)

    def stop():
        state["server"].stop()

    start()
    _reset_fsspec()  # file systems made before the server listened
    try:
        yield Server("s3", port, stop, start)
    finally:
        with contextlib.suppress(Exception):
            stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    _needs("gcsfs")
    emulator = Path(sys.executable).with_name("gcp-storage-emulator")
    if not emulator.exists():
        pytest.skip("gcp-storage-emulator missing: pip install -e '.[cloud,test]'")
    port = GCS_PORT
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    state = {}

    def start():
        with open(log, "ab") as out:
            state["proc"] = subprocess.Popen(
                [str(emulator), "start", "--host", "127.0.0.1", "--port", str(port), "-q", "-M"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for(port, state["proc"])

    def stop():
        proc = state["proc"]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    start()
    _reset_fsspec()
    try:
        yield Server("gs", port, stop, start)
    finally:
        with contextlib.suppress(Exception):
            stop()


@pytest.fixture(params=["s3", "gs"])
def bucket_server(request) -> Server:
    """The S3 server, then the GCS emulator."""
    return request.getfixturevalue("s3_server" if request.param == "s3" else "gcs_server")


@pytest.fixture
def bucket(bucket_server) -> str:
    """A fresh bucket on each real server in turn (``s3://...``, ``gs://...``)."""
    return bucket_server.new_bucket()


@pytest.fixture
def memory_bucket() -> str:
    """A fresh ``memory://`` location (fsspec's in-process file system)."""
    _needs("fsspec")
    return Server("memory", None).new_bucket()
