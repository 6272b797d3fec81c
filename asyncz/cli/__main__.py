"""``python -m asyncz.cli``."""

import sys

from asyncz.cli import main

sys.exit(main())
