"""`python -m lab COMMAND`: the local lab's command line (lab/cli/)."""

import sys

from lab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
