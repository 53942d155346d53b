"""PrinterMaster hub: aiohttp + python-socketio, SQLite or PostgreSQL, JWT (branch or
company mode; a company hub in several processes through Redis).

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
- ``printer_retirement`` (printers removed or dropped, agents retired) and
  ``printer_addition`` (a printer added at run time through its agent).
- ``printer_changes`` (a printer's new state: fan-out, then the reactions of
  ``printer_reactions``), ``stations`` (routing, failover), ``job_expiry``,
  ``dispatch`` (jobs to agents and their outcomes), ``health``, ``alerts``.
- ``broadcast`` (the Socket.IO server, rooms, batched updates, every event out; its
  client manager is ``room_manager`` or, across processes, ``redis_rooms``),
  ``printer_views``, ``active_jobs``, ``live_state``, ``credentials``, ``metrics``.
- ``company.mirror`` (what a company hub knows of its branches), ``company.links``
  (a branch's link), ``company.peers`` (the other processes of a company hub).
- ``cloudprnt`` (Star CloudPRNT printers that poll the hub: enrollment check, jobs
  offered, fetched and confirmed, silence) and ``cloudprnt_routes`` (its HTTP edge);
  ``cloudprnt_admin`` (``pm printer cloudprnt``).
- ``hub_lock`` (one hub per store), ``proxies`` (clients behind a load balancer),
  ``log_ring`` (the recent log lines the dashboard's Logs tab reads).
- ``store``: SQL, one module per noun; ``global_ids``: ids on a company hub.
"""
