"""PrinterMaster branch hub: aiohttp + python-socketio, SQLite, JWT."""

__version__ = "0.1.0"
