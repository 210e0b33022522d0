"""``python -m kvmmu.cli``: the ``kvmmu`` command."""

import sys

from kvmmu.cli import main

sys.exit(main())
