"""``pm tui --web``: the page template served by :mod:`pm_tui.web_server`."""
