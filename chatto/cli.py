"""The ``chatto`` command: ``init`` and ``run`` (more subcommands arrive later).

Every failure the operator can fix ends as one line on stderr starting with
``chatto: error:`` and a non-zero exit status: 2 for configuration, 1 for
anything that stopped the server from starting or running.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from chatto import __version__
from chatto.config import Config, load_config
from chatto.errors import ChattoError, ConfigError
from chatto.initcmd import write_initial_config
from chatto.tuning import tune_gc

log = logging.getLogger("chatto")

DEFAULT_CONFIG = "chatto.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatto", description="Chatto chat server")
    parser.add_argument("--version", action="version", version=f"chatto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    default = os.environ.get("CHATTO_CONFIG", DEFAULT_CONFIG)
    p_init = sub.add_parser("init", help="write a new config file with fresh secrets")
    p_init.add_argument("-c", "--config", default=default, help="config path")
    p_run = sub.add_parser("run", help="run the server")
    p_run.add_argument("-c", "--config", default=default, help="config path")
    p_run.add_argument(
        "--init",
        action="store_true",
        help="create the config (with fresh secrets) first if it does not exist",
    )
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def fail(message: str, status: int) -> int:
    print(f"chatto: error: {message}", file=sys.stderr)
    return status


async def _watch_signals(shutdown: trio.Event, scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if not shutdown.is_set():
                log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
                shutdown.set()
            else:
                log.warning("second signal: stopping now")
                scope.cancel()


async def run_until_signal(config: Config) -> None:
    """Serve until SIGINT/SIGTERM; a second signal cancels at once."""
    from chatto.server import serve_chatto  # heavy imports only for `run`

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, shutdown, nursery.cancel_scope)
        async with trio.open_nursery() as server:
            running = await server.start(serve_chatto, config, shutdown)
            tune_gc()
            print(f"chatto: serving on {running.http_url} (Ctrl-C to stop)", file=sys.stderr)
        nursery.cancel_scope.cancel()  # the server returned: stop watching signals
    log.info("stopped")


def _first_chatto_error(group: BaseExceptionGroup[ChattoError]) -> ChattoError:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, ChattoError)
    return exc


def cmd_run(path: Path, init: bool) -> int:
    if init and not path.exists():
        write_initial_config(path)
        print(f"chatto: wrote {path} with fresh secrets", file=sys.stderr)
    config = load_config(path)
    setup_logging(config.logging.level)
    error: ChattoError | None = None
    try:
        trio.run(run_until_signal, config)
    except* ChattoError as group:
        error = _first_chatto_error(group)
    return fail(error.message, 1) if error is not None else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = Path(args.config)
    try:
        if args.command == "init":
            write_initial_config(path)
            print(f"chatto: wrote {path} (mode 0600) with fresh secrets", file=sys.stderr)
            return 0
        if args.command == "run":
            return cmd_run(path, args.init)
    except ConfigError as exc:
        return fail(exc.message, 2)
    except ChattoError as exc:
        return fail(exc.message, 1)
    return fail(f"unknown command {args.command}", 2)


if __name__ == "__main__":
    sys.exit(main())
