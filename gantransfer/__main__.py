"""``python -m gantransfer``: the same as the ``gantransfer`` command."""

from gantransfer.cli import main

main()
