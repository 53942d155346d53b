"""The company hub: branch hubs sync to it over ``/branch``; it mirrors their printers,
jobs, alerts and agents, shows them on ``/ops`` and forwards operator actions down."""
