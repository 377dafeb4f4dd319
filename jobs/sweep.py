"""Run a study: python jobs/sweep.py [--config configs/quickstart.yaml] [--set key=value] [--dry-run]"""

import sys

from scaling.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
