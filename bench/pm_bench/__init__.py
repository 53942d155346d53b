"""``pm bench``: speed, scale and memory of the hub, measured against the bare framework.

:mod:`~pm_bench.runner` runs the scenarios (one module each: ``idle``,
``roundtrip``, ``throughput``, ``fanout``, ``connections``, ``baseline``); the
server under test runs in its own process and the load comes from
:mod:`~pm_bench.worker` processes speaking the wire protocol through
:mod:`~pm_bench.wire`. :mod:`~pm_bench.relay` is the bare python-socketio
relay every figure is compared with; :mod:`~pm_bench.report` prints the table
and writes the JSON. See docs/performance.md.
"""
