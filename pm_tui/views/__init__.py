"""The views inside the main screen's tabs: printers, jobs, alerts, agents, branches.

Each follows the fleet through the :class:`~pm_tui.dashboard.Dashboard` protocol and
never imports a screen: it asks the dashboard to open a printer or a job."""
