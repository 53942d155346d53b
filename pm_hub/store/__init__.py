"""The hub's SQLite store: one file, versioned migrations, one writer thread."""

from pm_core.database import Database
from pm_hub.store.migrations import CURRENT_VERSION, migrate, prepare_hub_db

__all__ = ["CURRENT_VERSION", "Database", "migrate", "prepare_hub_db"]
