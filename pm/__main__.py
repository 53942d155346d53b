import sys

from pm.cli import main

sys.exit(main())
