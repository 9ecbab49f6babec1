"""Workflows: the library behind each command. They load configs, data and models, call the
capabilities (``gan``, ``transfer_learning``, ``visualize``), and write run folders and reports."""
