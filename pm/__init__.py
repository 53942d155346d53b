"""The composition root: the ``pm`` command, ``pm up``, ``pm demo`` and the runners.

The only shipped package that imports more than one component (pm_hub, pm_agent,
pm_tui); nothing imports it.
"""
