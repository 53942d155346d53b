"""The dashboard's screens: the main screen (header, tabs, footer), printer and job
detail, and the dialogs. The views inside the main screen's tabs are in pm_tui.views."""
