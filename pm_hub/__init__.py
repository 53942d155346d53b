"""PrinterMaster hub: aiohttp + python-socketio, SQLite, JWT (branch or company mode).

Where things are, from the edge in (no import cycles between these modules, and no
service takes or imports the :class:`~pm_hub.hub.Hub` container):

- ``server`` starts the aiohttp application; ``wiring`` builds every service, gives
  each what it uses, subscribes the reactions to a printer change and binds the
  namespaces and HTTP routes; ``hub`` is the container it returns (start/stop order).
- ``ops_namespace``, ``agent_namespace``, ``company.branch_namespace``, ``http_api``:
  the edges, module-level handlers that check the caller and hand the payload on.
- ``operator_actions``: the protocol of what operators can do, implemented by
  ``operations.BranchOperations`` and ``company.operations.CompanyOperations``.
- ``agent_sessions`` (agents coming and going), ``agent_printers`` (registrations
  and status reports), ``upstream`` (a branch's link to its company hub).
- ``printer_changes`` (a printer's new state: fan-out, then the reactions of
  ``printer_reactions``), ``stations`` (routing, failover), ``job_expiry``,
  ``dispatch`` (jobs to agents and their outcomes), ``health``, ``alerts``.
- ``broadcast`` (the Socket.IO server, rooms, batched updates, every event out),
  ``printer_views``, ``active_jobs``, ``live_state``, ``credentials``, ``metrics``.
- ``store``: SQL, one module per noun; ``global_ids``: ids on a company hub.
"""
