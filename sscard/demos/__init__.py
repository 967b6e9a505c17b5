"""Scenes of ``make demo``, each a function ``run(stage)`` in its own module."""
