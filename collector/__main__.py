"""``python -m collector``: see ``collector.cli``."""

from collector.cli import main

raise SystemExit(main())
