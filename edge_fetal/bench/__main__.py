"""`python -m edge_fetal.bench [--quick] [--model PATH] ...`"""

import sys

from edge_fetal.bench.command import main

sys.exit(main())
