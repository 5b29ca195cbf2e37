"""``python -m hyperopt``: see `hyperopt.cli`."""
import sys

from .cli import main

sys.exit(main())
