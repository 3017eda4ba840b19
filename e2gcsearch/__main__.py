"""``python -m e2gcsearch`` is the ``e2gcsearch`` command."""

import sys

from .cli import main

sys.exit(main())
