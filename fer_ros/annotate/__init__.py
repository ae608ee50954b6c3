"""Annotation tool: step through a bag or video, mark where expressions start, peak and end, flag doubtful clips,
and write the label files ``eval-bag`` and the FAN clip loader read (see docs/annotation.md).

Modules: ``sources`` (frames by index), ``session`` (keys -> state), ``store`` (atomic files, resume, clip export),
``window`` (drawing and the HighGUI window), ``app`` (the interactive loop), ``headless`` (apply a label file),
``predictions`` (the node's output from a scored bag), ``cli`` (``fer-ros annotate``).
"""
