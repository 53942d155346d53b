"""PrinterMaster hub: aiohttp + python-socketio, SQLite, JWT (branch or company mode)."""
