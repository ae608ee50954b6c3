"""Subcommands of ``fer-ros`` that need the training package (each module: ``add_arguments``, ``run``)."""
