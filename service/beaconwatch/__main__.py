"""``python -m beaconwatch`` = the ``beaconwatch`` command."""

import sys

from beaconwatch.cli import main

sys.exit(main())
