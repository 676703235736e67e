"""CPU (and, where present, GPU) latency benchmark: `python benchmarks/run_bench.py [--quick] [--model PATH]`.

The same as `edge-fetal bench`; see `edge_fetal/bench/` for what is measured and how.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_fetal.bench.command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
