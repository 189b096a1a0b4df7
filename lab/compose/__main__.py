import sys

import lab.compose
from lab.compose import main

# No options: any argument is refused before the lab starts and the files are rewritten.
if sys.argv[1:] in (["-h"], ["--help"]):
    print("usage: python -m lab.compose\n\n" + lab.compose.__doc__)
    sys.exit(0)
if sys.argv[1:]:
    print(f"python -m lab.compose: takes no arguments, got {' '.join(sys.argv[1:])!r}", file=sys.stderr)
    sys.exit(2)
sys.exit(main())
