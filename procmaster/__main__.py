"""``python -m procmaster``: the same as the ``procmaster`` command."""

import sys

from .cli import main

sys.exit(main())
