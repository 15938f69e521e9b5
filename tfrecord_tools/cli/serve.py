"""``tfrecord-tools serve dispatcher|worker``: tf.data service servers."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a tf.data service dispatcher or worker",
        description="Run one tf.data service server until interrupted (SIGINT/SIGTERM). "
        "Trainers then read with make_dataset(..., service='grpc://DISPATCHER:PORT'). "
        "The servers listen on all interfaces without authentication: private networks only.",
    )
    servers = serve.add_subparsers(dest="kind", metavar="KIND", required=True)
    dispatcher = servers.add_parser(
        "dispatcher",
        help="hands out work and tracks workers (one per job)",
        description="Start a dispatcher; prints its address and its worker count as it changes.",
    )
    dispatcher.add_argument(
        "--port", type=int, default=5050, help="port to listen on; 0 picks one (default: 5050)"
    )
    dispatcher.add_argument(
        "--work-dir",
        metavar="DIR",
        help="journal for fault tolerant mode: a restarted dispatcher resumes its jobs",
    )
    dispatcher.set_defaults(handler=_serve)
    worker = servers.add_parser(
        "worker",
        help="runs input pipelines for trainers",
        description="Start a worker that registers with the dispatcher at HOST:PORT.",
    )
    worker.add_argument("--dispatcher", required=True, metavar="HOST:PORT")
    worker.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: 0, any free port)"
    )
    worker.add_argument(
        "--host",
        default="localhost",
        help="this machine's name as trainers reach it (default: localhost; set it on "
        "more than one machine)",
    )
    worker.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..read.service import run

    if args.kind == "dispatcher":
        return run("dispatcher", port=args.port, work_dir=args.work_dir)
    return run("worker", dispatcher=args.dispatcher, port=args.port, host=args.host)
