"""The hub's store: SQL per noun, one set of functions for both engines (a SQLite file,
or PostgreSQL for a company hub), versioned migrations for each, one writer thread."""

from pm_core.database import Database
from pm_hub.store.migrations import CURRENT_VERSION, migrate, prepare_hub_db

__all__ = ["CURRENT_VERSION", "Database", "migrate", "prepare_hub_db"]
