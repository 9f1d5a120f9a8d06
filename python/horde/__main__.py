"""``python -m horde`` is the ``horde`` command."""

from horde.main import main

main()
