"""The ``chatto`` command: init, run, backup, restore, keys and loadtest.

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
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from chatto import __version__
from chatto.config import Config, load_config
from chatto.errors import ChattoError, ConfigError, first_chatto_error
from chatto.initcmd import write_initial_config
from chatto.logs import setup_logging
from chatto.tuning import tune_gc, tune_threads
from chatto.workers import Workers, check_failed, is_child, plan

log = logging.getLogger("chatto")

DEFAULT_CONFIG = "chatto.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatto", description="Chatto chat server")
    parser.add_argument("--version", action="version", version=f"chatto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    default = os.environ.get("CHATTO_CONFIG", DEFAULT_CONFIG)
    p_init = sub.add_parser("init", help="write a new config file with fresh secrets")
    p_init.add_argument("-c", "--config", default=default, help="config path")
    p_backup = sub.add_parser("backup", help="write a backup archive (works while serving)")
    p_backup.add_argument("-c", "--config", default=default, help="config path")
    p_backup.add_argument("-o", "--output", help="archive path (default: chatto-<time>.tar.gz)")
    p_backup.add_argument("--encrypt", action="store_true", help="age-encrypt with a passphrase")
    p_backup.add_argument("--include-keys", action="store_true", help="include ENCRYPTION_KEYS")
    p_backup.add_argument(
        "--i-understand-plaintext-keys",
        dest="plaintext_keys",
        action="store_true",
        help="allow --include-keys without --encrypt (the archive can read everything)",
    )
    p_backup.add_argument(
        "--passphrase", help="passphrase (else $CHATTO_BACKUP_PASSPHRASE, stdin or a prompt)"
    )
    p_restore = sub.add_parser("restore", help="restore an archive (server stopped)")
    p_restore.add_argument("archive")
    p_restore.add_argument("-c", "--config", default=default, help="config path")
    p_restore.add_argument("--conflict", choices=["error", "skip", "overwrite"], default="error")
    p_restore.add_argument("--passphrase")
    p_keys = sub.add_parser("keys", help="export, import or re-seal encryption keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_kexp = keys_sub.add_parser("export", help="write an age-encrypted key export")
    p_kexp.add_argument("-o", "--output", required=True)
    p_kexp.add_argument("-c", "--config", default=default)
    p_kexp.add_argument("--passphrase")
    p_kimp = keys_sub.add_parser("import", help="import keys (never overwrites)")
    p_kimp.add_argument("file")
    p_kimp.add_argument("-c", "--config", default=default)
    p_kimp.add_argument("--passphrase")
    p_krot = keys_sub.add_parser(
        "rotate-master", help="re-seal every key under a new master key (server stopped)"
    )
    p_krot.add_argument("-c", "--config", default=default)
    p_krot.add_argument(
        "--new-key-label",
        help="kms.provider = pkcs11: re-seal under this token key (created if absent)",
    )
    p_khsm = keys_sub.add_parser(
        "init-hsm", help="create the master key inside the PKCS#11 token ([kms] pkcs11_*)"
    )
    p_khsm.add_argument("-c", "--config", default=default)
    p_khsm.add_argument("--key-label", help="the new key's label (default kms.pkcs11_key_label)")
    sub.add_parser("loadtest", help="load-test a server (see `chatto loadtest --help`)")
    p_run = sub.add_parser("run", help="run the server")
    p_run.add_argument("-c", "--config", default=default, help="config path")
    p_run.add_argument(
        "--init",
        action="store_true",
        help="create the config (with fresh secrets) first if it does not exist",
    )
    p_run.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server processes sharing the port and NATS (default: webserver.workers)",
    )
    return parser


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


async def run_until_signal(config: Config, workers: Workers | None = None) -> None:
    """Serve until SIGINT/SIGTERM; a second signal cancels at once.

    With ``workers``, this process also runs the other worker processes and
    stops serving only once they have all exited (``chatto.workers``).
    """
    from chatto.server import serve_chatto  # heavy imports only for `run`

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, shutdown, nursery.cancel_scope)
        async with trio.open_nursery() as server:
            own = shutdown if workers is None else trio.Event()
            # serve_chatto logs the one "listening on" line (text or JSON).
            await server.start(serve_chatto, config, own)
            if workers is not None:
                server.start_soon(workers.serve, shutdown, own)
            tune_gc()
            tune_threads()
        nursery.cancel_scope.cancel()  # the server returned: stop watching signals
    check_failed(workers)
    log.info("stopped")


def cmd_run(path: Path, init: bool, workers: int = 0) -> int:
    wrote = False
    if init and not path.exists():
        write_initial_config(path)
        wrote = True
    config = load_config(path)
    setup_logging(config.logging.level, config.logging.format)
    if wrote:
        log.info("wrote %s with fresh secrets", path)
    error: ChattoError | None = None
    count = workers or config.webserver.workers
    children: Workers | None = None
    try:
        if count > 1 and not is_child():
            laid_out = plan(config, count)
            config = laid_out.config
            grace = config.webserver.shutdown_grace_seconds
            children = Workers(path.resolve(), count, laid_out.env, grace)
        trio.run(run_until_signal, config, children)
    except* ChattoError as group:
        error = first_chatto_error(group)
        logging.getLogger("chatto").debug("the server stopped on an error", exc_info=error)
    return fail(error.message, 1) if error is not None else 0


def cmd_maintenance(args: argparse.Namespace, config: Config) -> int:
    """backup / restore / keys: CLI-only work (age's scrypt holds the GIL)."""
    from chatto.backup import commands, keys

    setup_logging("warning")
    if args.command == "backup":
        if args.include_keys and not args.encrypt and not args.plaintext_keys:
            return fail(commands.PLAINTEXT_KEYS, 2)  # a usage error: nothing was read yet
        out = Path(args.output or time.strftime("chatto-%Y%m%d-%H%M%S.tar.gz"))
        if args.encrypt and not out.name.endswith(".age"):
            out = out.with_name(out.name + ".age")
        commands.run(
            commands.backup,
            config,
            out,
            args.encrypt,
            args.include_keys,
            args.passphrase,
            args.plaintext_keys,
        )
        print(f"chatto: backup written to {out}", file=sys.stderr)
    elif args.command == "restore":
        notes = commands.run(
            commands.restore, config, Path(args.archive), args.conflict, args.passphrase
        )
        for note in notes:
            print(f"chatto: note: {note}", file=sys.stderr)
        print("chatto: restore complete", file=sys.stderr)
    elif args.keys_command == "export":
        n = commands.run(keys.keys_export, config, Path(args.output), args.passphrase)
        print(f"chatto: {n} key records exported to {args.output}", file=sys.stderr)
    elif args.keys_command == "import":
        written, skipped = commands.run(keys.keys_import, config, Path(args.file), args.passphrase)
        print(f"chatto: {written} key records imported, {skipped} already present", file=sys.stderr)
    elif args.keys_command == "init-hsm":
        from chatto.backup import hsm

        label, key_id = commands.run(hsm.init_hsm, config, args.key_label)
        print(
            f"chatto: created key {label!r} (master key {key_id}) in PKCS#11 token "
            f"{config.kms.pkcs11_token_label!r}; it cannot leave the token",
            file=sys.stderr,
        )
    else:
        return cmd_rotate(args, config)
    return 0


def cmd_rotate(args: argparse.Namespace, config: Config) -> int:
    """``keys rotate-master``: a new key file (local) or a key in the token (pkcs11)."""
    from chatto.backup import commands, hsm, keys

    if config.kms.provider != "pkcs11":
        if args.new_key_label:
            return fail("--new-key-label needs kms.provider = pkcs11", 2)
        done, skipped, old = commands.run(keys.rotate_master, config)
        print(
            f"chatto: {done} key records re-sealed ({skipped} already were); "
            f"{config.master_key_path} is the new master key. The old one is in {old}: "
            "destroy it once no backup made before this rotation is needed",
            file=sys.stderr,
        )
        return 0
    done, skipped, label, key_id = commands.run(hsm.rotate_to_token, config, args.new_key_label)
    print(
        f"chatto: {done} key records re-sealed ({skipped} already were) under key {label!r} "
        f'(master key {key_id}); set kms.pkcs11_key_label = "{label}" before starting. '
        "The old key still exists: destroy it once no backup made before this rotation "
        "is needed",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadtest"]:
        # Its own parser (chatto/loadtest/params.py) owns every option after it.
        try:
            from chatto.loadtest.driver import main as loadtest
        except ImportError as exc:
            return fail(f"chatto loadtest needs {exc.name}: pip install 'chatto[loadtest]'", 2)
        return loadtest(argv[1:])
    args = _parser().parse_args(argv)
    path = Path(args.config)
    try:
        if args.command == "init":
            write_initial_config(path)
            print(f"chatto: wrote {path} (mode 0600) with fresh secrets", file=sys.stderr)
            return 0
        if args.command == "run":
            if args.workers < 0 or args.workers > 64:
                return fail("--workers takes 1..64", 2)
            return cmd_run(path, args.init, args.workers)
        return cmd_maintenance(args, load_config(path))
    except ConfigError as exc:
        return fail(exc.message, 2)
    except ChattoError as exc:
        return fail(exc.message, 1)
    return fail(f"unknown command {args.command}", 2)


if __name__ == "__main__":
    sys.exit(main())
