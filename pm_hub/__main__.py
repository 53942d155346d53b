import sys

from pm_hub.command import main

sys.exit(main())
