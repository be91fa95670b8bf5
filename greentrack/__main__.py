import sys

from greentrack.cli import main

sys.exit(main())
