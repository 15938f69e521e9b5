"""``python -m tfrecord_tools`` runs the CLI. ``cli`` imports nothing heavy and ``main``
handles Ctrl-C and SIGTERM before it imports the commands, so an early interrupt ends
with the interrupted message too."""

from .cli import main

raise SystemExit(main())
