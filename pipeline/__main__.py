"""``python -m pipeline`` is the ``phone-enrich`` command."""

from pipeline.cli import main

raise SystemExit(main())
