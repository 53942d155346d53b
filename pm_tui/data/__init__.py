"""The dashboard's data layer: plain Python, no Textual.

What the hub sent (``EventBuffer``), what the dashboard knows (``FleetState``),
how rows are filtered and sorted, how a job document reads as text.
"""
