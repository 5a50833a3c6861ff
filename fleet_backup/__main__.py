import sys

from fleet_backup.cli import main

sys.exit(main())
