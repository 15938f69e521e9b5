"""Thin launchers for tf.data service servers (``tfrecord-tools serve``).

A tf.data service job has one dispatcher (hands out work, tracks workers) and any number of
workers (run the input pipeline, stream batches to the trainers). The trainers call
``make_dataset(..., service="grpc://DISPATCHER:PORT")``; the pipeline definition travels
to the workers, so every worker must see the shard files under the same paths (a shared
filesystem, or the same copy on every host).

The servers are TensorFlow's (``tf.data.experimental.service``); this module only configures
them, reports where they listen, and stops them cleanly on SIGINT/SIGTERM. They listen on all
interfaces and have no authentication: run them on a private network.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from ..errors import TFRecordToolsError
from ..lifetime import child_env, end_with_parent
from .options import service_address


@dataclass
class Server:
    """A started dispatcher or worker: ``address`` (host:port as seen by others), ``stop``."""

    kind: str
    address: str
    server: object

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]


def start_dispatcher(port: int = 5050, work_dir: str | None = None) -> Server:
    """Start a dispatcher on ``port`` (0: any free port). With ``work_dir`` it runs in fault
    tolerant mode: its journal there lets a restarted dispatcher resume the running jobs."""
    import tensorflow as tf

    service = tf.data.experimental.service
    config = service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=work_dir is not None
    )
    server = service.DispatchServer(config)
    return Server("dispatcher", server.target.partition("://")[2], server)


def start_worker(dispatcher: str, port: int = 0, host: str = "localhost") -> Server:
    """Start a worker that registers with ``dispatcher`` (``host:port``). ``host`` is the
    name under which trainers reach this worker: on more than one machine, this machine's
    reachable host name or address."""
    import tensorflow as tf

    service = tf.data.experimental.service
    dispatcher = service_address(dispatcher).partition("://")[2]
    config = service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=f"{host}:%port%"
    )
    server = service.WorkerServer(config)
    address = getattr(server, "_address", None) or f"{host}:{port}"
    return Server("worker", address.replace("localhost", host, 1), server)


def serve(
    server: Server,
    *,
    say: Callable[[str], None] = print,
    poll: float = 1.0,
) -> None:
    """Run until SIGINT/SIGTERM, then stop the server. A dispatcher reports its worker
    count whenever it changes."""
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        workers = None
        while not stopping:
            if server.kind == "dispatcher":
                count = server.server._num_workers()  # type: ignore[attr-defined]
                if count != workers:
                    workers = count
                    say(f"workers: {count}")
            time.sleep(poll)
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        say(f"{server.kind} stopped")


def _check_port_free(port: int, kind: str) -> None:
    """gRPC binds with SO_REUSEPORT: a second server on a busy port would start and share
    the connections of the first. A plain bind tells whether the port is taken."""
    if port == 0:
        return
    try:  # gRPC listens on [::] (IPv4 too) where the machine has IPv6
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        where: tuple = ("::", port)
    except OSError:
        probe, where = socket.socket(socket.AF_INET, socket.SOCK_STREAM), ("0.0.0.0", port)
    with probe:
        try:
            probe.bind(where)
        except OSError as e:
            raise TFRecordToolsError(
                f"cannot start the {kind} on port {port}: {e.strerror}"
            ) from None


def run(kind: str, **options) -> int:
    """The ``serve`` command: start one server, print where it listens, serve."""
    end_with_parent()  # a server ServerProcess started ends with its parent

    def say(line: str) -> None:
        print(line, flush=True)

    _check_port_free(options["port"], kind)
    import tensorflow as tf

    try:
        if kind == "dispatcher":
            server = start_dispatcher(options["port"], options.get("work_dir"))
        else:
            server = start_worker(options["dispatcher"], options["port"], options["host"])
    except tf.errors.OpError as e:
        raise TFRecordToolsError(
            f"cannot start the {kind} on port {options['port']}: {e.message}"
        ) from None
    if kind == "dispatcher":
        mode = " (fault tolerant)" if options.get("work_dir") else ""
        say(f"dispatcher listening on {server.address}{mode}")
    else:
        say(f"worker listening on {server.address}, dispatcher {options['dispatcher']}")
    sys.stdout.flush()
    serve(server, say=say)
    return 0


#: How long a server may take to say it is ready: it imports TensorFlow first, which takes
#: seconds on an idle machine and minutes on a busy one. A bound, not a wait: waits end on
#: the servers' own lines.
START_TIMEOUT = 600.0
_STDERR_TAIL = 20  # lines of a server's stderr an error quotes


class ServerProcess:
    """``tfrecord-tools serve ARGS...`` in a subprocess, for tests, benchmarks and trying
    the service on one machine; its output lines can be waited for. It ends with this
    process (:func:`end_with_parent`)."""

    def __init__(self, *args: str):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfrecord_tools", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(env),
        )
        self.seen: list[str] = []  # the lines waited through so far
        self._lines: queue.Queue[str] = queue.Queue()
        self._errors: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._signalled = False
        self._pump = threading.Thread(target=self._read_lines, daemon=True)
        self._pump.start()
        self._stderr = threading.Thread(target=self._read_errors, daemon=True)
        self._stderr.start()

    def _read_lines(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(line.rstrip("\n"))

    def _read_errors(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self._errors.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = START_TIMEOUT, *, what: str = "") -> str:
        """The next output line starting with ``prefix``. An error naming what was awaited
        (``what``, else the line) after ``timeout`` seconds, or as soon as the process ended
        without printing it."""
        what = what or f"line {prefix!r}"
        started = time.monotonic()
        while True:
            left = started + timeout - time.monotonic()
            if not self._pump.is_alive() and self._lines.empty():  # all its output is read
                self.proc.wait()
                self._failed(f"it exited (code {self.proc.returncode}) while waiting for {what}")
            if left <= 0:
                self._failed(f"waited {time.monotonic() - started:.0f} s for {what}")
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def _failed(self, problem: str) -> NoReturn:
        self._stderr.join(timeout=1)
        stderr = "\n".join(self._errors)
        raise TFRecordToolsError(
            f"tfrecord-tools {' '.join(self.proc.args[3:])}: {problem}; "  # type: ignore[index]
            f"it printed {self.seen}" + (f", and on stderr:\n{stderr}" if stderr else "")
        )

    def terminate(self) -> None:
        """SIGTERM, once: a second one during shutdown would kill the server."""
        if self.proc.poll() is None and not self._signalled:
            self.proc.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, timeout: float = 120) -> int:
        """Terminate, wait, and return the exit code (killed after ``timeout`` seconds)."""
        self.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            self._pump.join(timeout=5)
            self._stderr.join(timeout=5)
            self.proc.stdout.close()  # type: ignore[union-attr]
            self.proc.stderr.close()  # type: ignore[union-attr]


def start_local_service(
    workers: int, *, work_dir: str | None = None, timeout: float = START_TIMEOUT
) -> tuple[str, list[ServerProcess]]:
    """A dispatcher on a free port and ``workers`` workers, each its own process on this
    machine, all registered; returns the trainers' ``grpc://`` address and the processes
    (dispatcher first). Ready means what the servers say: the dispatcher's address, each
    worker listening, and the dispatcher counting them all (registered); ``timeout`` bounds
    the whole start. Stop them with :meth:`ServerProcess.stop`."""
    deadline = time.monotonic() + timeout
    args = ["--work-dir", work_dir] if work_dir else []
    servers = [ServerProcess("dispatcher", "--port", "0", *args)]
    try:
        line = servers[0].wait_for("dispatcher listening on ", timeout, what="its address line")
        address = line.split()[3]
        servers += [ServerProcess("worker", "--dispatcher", address) for _ in range(workers)]
        for worker in servers[1:]:
            worker.wait_for(
                "worker listening on ", deadline - time.monotonic(), what="its 'listening on' line"
            )
        servers[0].wait_for(
            f"workers: {workers}",
            deadline - time.monotonic(),
            what=f"the dispatcher to count {workers} registered workers",
        )
    except BaseException as e:
        for server in servers:
            server.terminate()
        for server in servers:
            server.stop()
        if isinstance(e, TFRecordToolsError):
            raise TFRecordToolsError(
                f"the local tf.data service was not ready within {timeout:.0f} s: {e}"
            ) from None
        raise
    return f"grpc://{address}", servers
