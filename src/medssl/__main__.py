"""``python -m medssl`` runs the CLI."""

import sys

from medssl.cli import main

sys.exit(main())
