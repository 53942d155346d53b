"""What the agent learned about each configured address (identity, model,
serial), kept in the data dir so that a printer that is switched off when the
agent starts is still registered under the identity it had before.

One small JSON file, written atomically; blocking (call it off the event loop).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pm_core.private_files import write_private
from pm_core.protocol.languages import TEXT_MODES

log = logging.getLogger(__name__)

FILE_NAME = "agent-printers.json"


class IdentityCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}

    def load(self) -> IdentityCache:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return self
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return self
        if isinstance(data, dict):
            self.entries = {k: v for k, v in data.items() if isinstance(v, dict)}
        return self

    def identity(self, uri: str) -> str | None:
        value = self.entries.get(uri, {}).get("identity")
        return value if isinstance(value, str) else None

    def model(self, uri: str) -> str | None:
        value = self.entries.get(uri, {}).get("model")
        return value if isinstance(value, str) else None

    def profile(self, uri: str) -> str | None:
        """The profile an operator chose for the printer at ``uri`` (None: automatic)."""
        value = self.entries.get(uri, {}).get("profile")
        return value if isinstance(value, str) else None

    def language(self, uri: str) -> str | None:
        """The command language an operator chose for the printer at ``uri``."""
        value = self.entries.get(uri, {}).get("language")
        return value if isinstance(value, str) else None

    def text_mode(self, uri: str) -> str | None:
        """The text mode an operator chose for the printer at ``uri`` (None: auto)."""
        value = self.entries.get(uri, {}).get("text_mode")
        return value if value in TEXT_MODES else None

    def remember(self, uri: str, entry: dict[str, Any]) -> bool:
        """Store ``entry`` for ``uri``; True when something changed (then call save)."""
        if self.entries.get(uri) == entry:
            return False
        self.entries[uri] = entry
        return True

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        write_private(tmp, json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
