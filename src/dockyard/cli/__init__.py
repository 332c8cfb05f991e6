"""The ``dockyard`` command-line tool: one module per command group, registered in :mod:`.main`."""
