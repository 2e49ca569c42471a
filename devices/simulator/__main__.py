"""`python -m devices.simulator --secrets FILE …`: the fleet simulator without Django (what each of
`--processes N` runs)."""

import sys

from .cli import main

sys.exit(main())
