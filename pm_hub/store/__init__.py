"""The hub's SQLite store: one file, versioned migrations, one writer thread."""

from pm_hub.store.database import Database
from pm_hub.store.migrations import CURRENT_VERSION, migrate

__all__ = ["CURRENT_VERSION", "Database", "migrate"]
