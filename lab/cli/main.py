"""`python -m lab COMMAND`: the local lab's command line.

Each command lives in its own module of lab/cli/, which exposes `register(subparsers)`; the parser
it adds sets `func(args) -> exit code`."""

import argparse
import importlib

COMMAND_MODULES = ["lab.cli.serve", "lab.cli.envoy", "lab.cli.up", "lab.cli.demo", "lab.cli.bench",
                   "lab.cli.host_cluster"]


class OneLineErrors(argparse.ArgumentParser):
    """Bad arguments exit 2 with one line on stderr, not argparse's usage block (--help shows it).
    Subcommand parsers are made of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())} (see --help)\n")

    def _get_values(self, action, arg_strings):
        # Python 3.11 turns `--opt=--` into an empty list that skips the option's type check.
        if arg_strings == ["--"] and action.option_strings and action.nargs is None:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


def main(argv=None) -> int:
    parser = OneLineErrors(prog="python -m lab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)
