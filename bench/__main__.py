"""``python -m bench``: run the benchmark suite (``bench.run.main``)."""

from bench.run import main

raise SystemExit(main())
