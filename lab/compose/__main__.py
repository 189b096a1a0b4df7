import sys

from lab.compose import main

sys.exit(main())
