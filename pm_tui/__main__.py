import sys

from pm_tui.command import main

sys.exit(main())
