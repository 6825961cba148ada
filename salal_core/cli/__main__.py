"""`python -m salal_core.cli`: what torchrun, Slurm and `benchmarks/device_run.sh` launch."""

import sys

from salal_core.cli.main import main

sys.exit(main())
