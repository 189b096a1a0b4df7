"""`python -m lab COMMAND`: the local lab's command line. Each command lives in its own module,
which exposes `register(subparsers)`; the parser it adds sets `func(args) -> exit code`."""

import argparse
import importlib
import sys

COMMAND_MODULES = ["lab.serve", "lab.envoy", "lab.runner", "lab.experiment", "lab.bench"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
