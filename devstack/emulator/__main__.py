"""`python -m devstack.emulator --port N [--host 127.0.0.1] [--time-offset S] [--latency none|realistic]`"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from .server import LATENCIES, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.emulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--time-offset", type=float, default=0.0, help="seconds added to the wall clock the cache TTLs run on"
    )
    parser.add_argument(
        "--latency",
        choices=LATENCIES,
        default="none",
        help="realistic: answer with a real model's first-token delay and output speed",
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(time_offset=args.time_offset, latency=args.latency)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    if args.port == 0:
        _announce_port(server)
    server.run()


def _announce_port(server: uvicorn.Server) -> None:
    """With --port 0, print the bound port once listening so a parent can read it."""
    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        for s in server.servers:
            for sock in s.sockets:
                print(f"listening on port {sock.getsockname()[1]}", flush=True)
                return

    server.startup = startup


if __name__ == "__main__":
    main()
