"""``python -m pyro_vrnn.cli ...`` (as ``torchrun ... -m pyro_vrnn.cli train ...`` runs it)."""

import sys

from .main import main

sys.exit(main())
