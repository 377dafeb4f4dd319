"""Evaluate a model on retrieval benchmarks: python jobs/evaluate.py --model M --benchmark xquad-r --out OUT"""

import sys

from scaling.eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
