"""The one place the hub's services are built and given what each uses: the store, the
live state, the broadcaster, settings, metrics, the alert book ... (a service never
gets the whole hub). Also the reactions to a printer change, subscribed in order, and
the Socket.IO namespaces and HTTP routes bound to an aiohttp application.

Reading this file top to bottom is reading the hub's dependency graph: each service
is built from those above it.
"""

from __future__ import annotations

import logging

from aiohttp import web

from pm_core.database import Database
from pm_hub.active_jobs import ActiveJobs
from pm_hub.admission import Admission
from pm_hub.agent_namespace import AgentSide, setup_agent_namespace
from pm_hub.agent_printers import AgentPrinters
from pm_hub.agent_sessions import AgentSessions
from pm_hub.alerts import AlertBook
from pm_hub.broadcast import Broadcaster
from pm_hub.cloudprnt import CloudPrntServer
from pm_hub.cloudprnt_routes import setup_cloudprnt
from pm_hub.company.branch_namespace import BranchSide, setup_branch_namespace
from pm_hub.company.mirror import BranchMirror
from pm_hub.company.operations import CompanyOperations
from pm_hub.company.peers import CompanyPeers
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.credential_watch import CredentialWatch
from pm_hub.credentials import Credentials
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.http_api import HttpSide, setup_http_api
from pm_hub.hub import Hub
from pm_hub.hub_lock import hub_lock
from pm_hub.job_expiry import JobExpiry
from pm_hub.live_state import LiveState
from pm_hub.log_ring import LogRing
from pm_hub.metrics import HubMetrics
from pm_hub.operations import BranchOperations
from pm_hub.operator_actions import OperatorActions
from pm_hub.ops_namespace import OpsSide, refuse_branch_hubs, setup_ops_namespace
from pm_hub.printer_addition import PrinterAddition
from pm_hub.printer_changes import PrinterChanges
from pm_hub.printer_reactions import redelivery_after_pause, station_failover, status_alerts
from pm_hub.printer_retirement import PrinterRetirement
from pm_hub.printer_views import PrinterViews
from pm_hub.rate_limit import RateLimiter
from pm_hub.retention import RetentionKeeper
from pm_hub.state_gauges import StateGauges
from pm_hub.stations import StationRouter
from pm_hub.upstream import UpstreamLink, UpstreamStatus
from pm_hub.webhooks import SECRET_FILE as WEBHOOK_SECRET_FILE
from pm_hub.webhooks import WebhookNotifier

log = logging.getLogger(__name__)


def build_hub(settings: HubSettings) -> Hub:
    """Every service of a hub, built and connected; nothing runs until ``Hub.start``."""
    db = Database(
        settings.database_url or settings.db_path, synchronous=settings.sqlite_synchronous
    )
    state = LiveState()
    metrics = HubMetrics()
    registry = CorrelationRegistry(
        timeout=settings.request_timeout, stale_after=settings.stale_after
    )
    credentials = Credentials(settings, db=db, state=state)
    jobs = ActiveJobs(metrics)
    views = PrinterViews(state, jobs)
    admission = Admission(
        connections_per_address=settings.max_connections_per_address,
        login_failures_allowed=settings.login_failures_allowed,
        operators_per_company=settings.max_operators_per_company,
        requests=RateLimiter(settings.ops_rate_limit),
    )
    broadcaster = Broadcaster(
        settings, state=state, db=db, metrics=metrics, views=views, admission=admission
    )
    jobs.on_depth_change = broadcaster.queue_changed  # every queue figure follows at once
    changes = PrinterChanges(state, broadcaster)
    webhooks = WebhookNotifier(
        [u.strip() for u in settings.webhook_urls.split(",") if u.strip()],
        timeout=settings.webhook_timeout_s,
        secret=settings.webhook_secret,
        secret_file=settings.webhook_secret_file or settings.data_dir / WEBHOOK_SECRET_FILE,
    )
    alerts = AlertBook(db=db, broadcaster=broadcaster, webhooks=webhooks)
    dispatcher = JobDispatcher(
        db=db, state=state, jobs=jobs, broadcaster=broadcaster, alerts=alerts, metrics=metrics
    )
    expiry = JobExpiry(state=state, jobs=jobs, dispatcher=dispatcher)
    router = StationRouter(db=db, state=state, jobs=jobs, dispatcher=dispatcher, alerts=alerts)
    health = HealthMonitor(settings, db=db, state=state, alerts=alerts)
    sessions = AgentSessions(
        db=db,
        state=state,
        broadcaster=broadcaster,
        changes=changes,
        registry=registry,
        dispatcher=dispatcher,
        health=health,
    )
    agent_printers = AgentPrinters(
        db=db, state=state, changes=changes, dispatcher=dispatcher, views=views, alerts=alerts
    )

    retirement = PrinterRetirement(
        db=db,
        state=state,
        jobs=jobs,
        dispatcher=dispatcher,
        alerts=alerts,
        health=health,
        broadcaster=broadcaster,
        company_mode=settings.company_mode,
    )

    # What a printer change means, in this order (pm_hub.printer_reactions).
    changes.subscribe(status_alerts(alerts))
    changes.subscribe(station_failover(router))
    changes.subscribe(redelivery_after_pause(state, dispatcher))

    metrics.registry.register(
        StateGauges(state=state, registry=registry, jobs=jobs, dispatcher=dispatcher, health=health)
    )
    db.on_write_latency = metrics.sqlite_write.observe
    registry.on_resolved = lambda pending, seconds: metrics.observe_roundtrip(pending.kind, seconds)

    mirror = None
    operations: OperatorActions
    upstream_status = (
        UpstreamStatus(settings.upstream_url.rstrip("/")) if settings.upstream_url else None
    )
    peers = None
    cloudprnt = None
    if settings.company_mode:
        mirror = BranchMirror(settings, db=db, broadcaster=broadcaster, registry=registry)
        if broadcaster.peers is not None:
            peers = CompanyPeers(broadcaster.peers, mirror)
        operations = CompanyOperations(db=db, mirror=mirror, registry=registry, health=health)
    else:
        operations = BranchOperations(
            settings,
            db=db,
            state=state,
            views=views,
            changes=changes,
            broadcaster=broadcaster,
            registry=registry,
            jobs=jobs,
            dispatcher=dispatcher,
            router=router,
            alerts=alerts,
            health=health,
            upstream=upstream_status,
        )
        # Star printers that poll the hub (no agent drives them).
        cloudprnt = CloudPrntServer(
            settings,
            db=db,
            state=state,
            jobs=jobs,
            changes=changes,
            dispatcher=dispatcher,
            admission=admission,
        )
    upstream = None
    if upstream_status is not None:
        upstream = UpstreamLink(
            settings,
            status=upstream_status,
            db=db,
            live=state,
            metrics=metrics,
            operations=operations,
        )
        broadcaster.after_change = upstream.poke  # changes are in its outbox too
    watch = CredentialWatch(credentials=credentials, state=state, sio=broadcaster.sio)
    addition = PrinterAddition(
        state=state,
        dispatcher=dispatcher,
        operations=operations,
        company_mode=settings.company_mode,
    )
    return Hub(
        settings=settings,
        db=db,
        state=state,
        metrics=metrics,
        registry=registry,
        credentials=credentials,
        credential_watch=watch,
        admission=admission,
        jobs=jobs,
        views=views,
        broadcaster=broadcaster,
        printer_changes=changes,
        webhooks=webhooks,
        alerts=alerts,
        dispatcher=dispatcher,
        expiry=expiry,
        router=router,
        health=health,
        agent_sessions=sessions,
        agent_printers=agent_printers,
        operations=operations,
        lock=hub_lock(
            data_dir=settings.data_dir,
            database_url=settings.database_url if settings.on_postgresql else None,
            shared=bool(settings.redis_url),
        ),
        mirror=mirror,
        peers=peers,
        upstream=upstream,
        retention=RetentionKeeper(settings, db=db),
        retirement=retirement,
        addition=addition,
        cloudprnt=cloudprnt,
        logs=LogRing(settings.log_lines),
    )


def mount(app: web.Application, hub: Hub) -> None:
    """Mount the hub's Socket.IO namespaces and HTTP routes on ``app``."""
    settings = hub.settings
    sio = hub.broadcaster.sio
    sio.attach(app)
    if hub.mirror is not None:
        branch_side = BranchSide(
            settings=settings,
            db=hub.db,
            state=hub.state,
            credentials=hub.credentials,
            admission=hub.admission,
            broadcaster=hub.broadcaster,
            mirror=hub.mirror,
            registry=hub.registry,
        )
        setup_branch_namespace(sio, branch_side, hub.metrics)
    else:
        refuse_branch_hubs(sio)
    ops_side = OpsSide(
        settings=settings,
        state=hub.state,
        credentials=hub.credentials,
        broadcaster=hub.broadcaster,
        operations=hub.operations,
        admission=hub.admission,
        retirement=hub.retirement,
        addition=hub.addition,
        logs=hub.logs,
    )
    setup_ops_namespace(sio, ops_side, hub.metrics)
    agent_side = AgentSide(
        db=hub.db,
        state=hub.state,
        sessions=hub.agent_sessions,
        printers=hub.agent_printers,
        dispatcher=hub.dispatcher,
        health=hub.health,
        registry=hub.registry,
        admission=hub.admission,
        retirement=retirement_of(hub),
    )
    setup_agent_namespace(sio, agent_side, hub.metrics)
    http_side = HttpSide(
        settings=settings,
        state=hub.state,
        credentials=hub.credentials,
        metrics=hub.metrics,
        operations=hub.operations,
        mirror=hub.mirror,
        upstream=hub.upstream.status if hub.upstream is not None else None,
        admission=hub.admission,
        peers=hub.peers,
        retirement=hub.retirement,
        addition=hub.addition,
    )
    setup_http_api(app, http_side)
    if hub.cloudprnt is not None:
        setup_cloudprnt(app, hub.cloudprnt)


def retirement_of(hub: Hub) -> PrinterRetirement:
    assert hub.retirement is not None  # build_hub makes one
    return hub.retirement
