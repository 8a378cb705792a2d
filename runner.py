"""``oracle-runner``: the command line. Each subcommand imports only what it needs.

oracle-runner demo                      the demo on an embedded default
oracle-runner backup --data DIR DEST    a compacted copy of a data directory
oracle-runner proof verify FILE         recompute a proof from its raw responses
oracle-runner proof show FILE           print a proof readably
oracle-runner repl [--socket PATH]      attach to the running daemon's debug REPL
oracle-runner devnet                    anvil with the contracts deployed, for a person
oracle-runner hl-sim --data DIR --port P
                                        the Hyperliquid simulator, for a person
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ops.process_tuning import tune_gc, use_fast_keccak

Command = Callable[[argparse.Namespace], int]


def _run(args: argparse.Namespace) -> int:
    import signal

    from ops.config import ConfigError, load_config
    from ops.daemon import Daemon
    from ops.logs import setup_logging
    from sources.evm import ConfigurationError
    from sources.keys import KeyLoadError
    from storage import StorageError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    daemon = Daemon(config)
    try:
        daemon.start()
    except (ConfigurationError, KeyLoadError, StorageError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    tune_gc(config.limits.gc_young_threshold)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.stop_soon())
    try:
        return daemon.wait()
    finally:
        daemon.stop()


def _demo(args: argparse.Namespace) -> int:
    from devnet.demo import DemoOptions, run

    return run(
        DemoOptions(
            scenario=args.scenario,
            hl_data=args.hl_data,
            report=args.report,
            markets=args.markets,
            timeout_s=args.timeout,
            data_dir=args.data,
        )
    )


def _backup(args: argparse.Namespace) -> int:
    from storage import StorageError, Store

    try:
        with Store.open(args.data) as store:
            store.backup(args.dest)
    except StorageError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup of {args.data} written to {args.dest}")
    return 0


def _proof(args: argparse.Namespace) -> int:
    from ops import proof_cmd

    if args.proof_command == "verify":
        return proof_cmd.verify_file(args.file, args.hash)
    return proof_cmd.show_file(args.file)


def _repl(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ops import repl_client
    from ops.repl_wire import socket_path_for

    path = args.socket
    if path is None and args.config is not None:
        from ops.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        path = socket_path_for(config.data_dir, config.api.repl_socket)
    return repl_client.main(path or socket_path_for(Path("data")), args.command)


def _devnet(args: argparse.Namespace) -> int:
    from devnet import cli

    return cli.main(args.rest)


def _hl_sim(args: argparse.Namespace) -> int:
    from devnet.hl_sim import cli

    return cli.main(args.rest)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="oracle-runner", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="the TOML configuration file")
    run.set_defaults(run=_run)

    demo = sub.add_parser("demo", help="run the demo on an embedded default")
    demo.add_argument("--scenario", help="a TOML or JSON file of market specs")
    demo.add_argument("--hl-data", help="a directory of vcrpy cassettes (default: the fixtures)")
    demo.add_argument("--report", help="write the results as JSON to this file")
    demo.add_argument("--markets", type=int, default=0, help="add N generated markets")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    demo.add_argument("--data", help="data directory (default: a temporary one)")
    demo.set_defaults(run=_demo)

    backup = sub.add_parser("backup", help="write a compacted copy of a data directory")
    backup.add_argument("--data", required=True, help="the data directory to copy")
    backup.add_argument("dest", help="an empty or new directory for the copy")
    backup.set_defaults(run=_backup)

    proof = sub.add_parser("proof", help="verify or show a data proof file")
    proof_sub = proof.add_subparsers(dest="proof_command", required=True)
    verify = proof_sub.add_parser("verify", help="recompute value and outcome, check the hash")
    verify.add_argument("file")
    verify.add_argument("--hash", help="the data hash committed on chain (0x...)")
    show = proof_sub.add_parser("show", help="print a proof readably")
    show.add_argument("file")
    proof.set_defaults(run=_proof)

    repl = sub.add_parser("repl", help="attach to the running daemon's debug REPL")
    repl.add_argument("--socket", help="the socket (default: from --config, or data/repl.sock)")
    repl.add_argument("--config", help="the daemon's TOML file, to find its socket")
    repl.add_argument("-c", "--command", help="run this one line and exit")
    repl.set_defaults(run=_repl)

    passthrough: tuple[tuple[str, Command, str], ...] = (
        ("devnet", _devnet, "start anvil with the contracts deployed"),
        ("hl-sim", _hl_sim, "run the Hyperliquid simulator"),
    )
    for name, command, help_text in passthrough:
        cmd = sub.add_parser(name, help=help_text, add_help=False)
        cmd.add_argument("rest", nargs=argparse.REMAINDER)
        cmd.set_defaults(run=command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    use_fast_keccak()  # before anything hashes: eth-hash picks its backend once
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ("devnet", "hl-sim"):
        # these commands parse their own options (argparse's REMAINDER would not take them)
        namespace = argparse.Namespace(rest=arguments[1:])
        return _devnet(namespace) if arguments[0] == "devnet" else _hl_sim(namespace)
    args = parser().parse_args(arguments)
    command: Command = args.run
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
