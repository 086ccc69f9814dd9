"""The benchmark suite, one command (issue 11): see bench/README.md.

.venv/bin/python bench/run.py             # everything, about 10-12 minutes
.venv/bin/python bench/run.py --quick     # the same scenarios, short (about 1-2 minutes)
.venv/bin/python bench/run.py --only crud,resume --out /tmp/bench
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
