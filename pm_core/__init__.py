"""The floor every PrinterMaster component stands on.

The wire contract (``pm_core.protocol``: event names, statuses, error codes, payload
checks, documents, correlation ids and the typed records that cross the wire) and
the plumbing the components share: logging (``pm_core.logs``), the SQLite writer
(``pm_core.database``), mDNS announcement and lookup (``pm_core.mdns``) and the
event loop choice (``pm_core.event_loop``). It imports no component.
"""

__version__ = "0.1.0"
