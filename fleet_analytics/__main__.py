import sys

from fleet_analytics.cli import main

sys.exit(main())
