import sys

from pm_hub.cli import main

sys.exit(main())
