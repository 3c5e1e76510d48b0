"""``python -m probe``: see ``probe.cli.main``."""

from probe.cli.main import main

raise SystemExit(main())
