"""A TCP proxy that adds latency to every HTTP request: object storage as a data centre
sees it, in front of a local S3 server.

    python benchmarks/latency_proxy.py --listen 9001 --to 9000 --delay-ms 20

Each request waits ``--delay-ms`` before its first byte is forwarded to the server: on a
kept-alive connection, a request is the first data from the client after the server's last
answer. A request body that arrives in several pieces (an upload) pays once, as a request
does on a real network (where latency is per round trip, not per byte). The delay is a
sleep, so concurrent requests overlap their waits as they would on a network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

CHUNK = 1 << 20


async def _pipe(reader, writer, on_data) -> None:
    try:
        while data := await reader.read(CHUNK):
            await on_data(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen: int, target: int, delay: float) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        state = {"answered": True}  # the next client data starts a request

        async def request_data(data=b""):
            if os.environ.get("PROXY_DEBUG"):
                print("client->", state["answered"], data[:50], file=sys.stderr)
            if state["answered"]:
                state["answered"] = False
                await asyncio.sleep(delay)

        async def response_data(data=b""):
            state["answered"] = True

        await asyncio.gather(
            _pipe(client_reader, server_writer, request_data),
            _pipe(server_reader, client_writer, response_data),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=512)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.listen, args.to, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
