"""``python -m tfrecord_tools`` runs the CLI."""

from .cli import main

raise SystemExit(main())
