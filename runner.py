"""``oracle-runner``: the command line. Each subcommand imports only what it needs.

oracle-runner demo                      the demo on an embedded default
oracle-runner backup --data DIR DEST    a compacted copy of a data directory
oracle-runner proof verify FILE         recompute a proof from its raw responses
oracle-runner proof show FILE           print a proof readably
oracle-runner devnet                    anvil with the contracts deployed, for a person
oracle-runner hl-sim --data DIR --port P
                                        the Hyperliquid simulator, for a person
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Command = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from devnet.foundation_demo import main

    return main(data_dir=args.data)


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


def _devnet(args: argparse.Namespace) -> int:
    from devnet import cli

    return cli.main(args.rest)


def _hl_sim(args: argparse.Namespace) -> int:
    from devnet.hl_sim import cli

    return cli.main(args.rest)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="oracle-runner", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the demo on an embedded default")
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

    for name, run, help_text in (
        ("devnet", _devnet, "start anvil with the contracts deployed"),
        ("hl-sim", _hl_sim, "run the Hyperliquid simulator"),
    ):
        cmd = sub.add_parser(name, help=help_text, add_help=False)
        cmd.add_argument("rest", nargs=argparse.REMAINDER)
        cmd.set_defaults(run=run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command: Command = args.run
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
