"""One training run on Ray Train: python jobs/train.py --config configs/train_quick.yaml [--set key=value]"""

import sys

from scaling.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
