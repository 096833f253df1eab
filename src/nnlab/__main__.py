"""``python -m nnlab`` is the ``nnlab`` command."""
import sys

from nnlab.cli import main

sys.exit(main())
