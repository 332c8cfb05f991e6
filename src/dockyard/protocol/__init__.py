"""The registry protocol without I/O, shared by the sync and async clients.

Every operation is a generator that yields instructions (the closed set in ``instructions``) and receives
the driver's answers; :mod:`dockyard._sync` and :mod:`dockyard.aio` drive them over
httpx. Modules: ``session`` (credentials, challenges, token cache, retries), ``operations`` (every client
operation), ``manifests`` / ``blobs`` / ``download`` (content), ``oci_metadata`` (properties on registries
without ``/acr/v1``), ``wire`` (ACR JSON), ``paging``, ``challenge``, ``responses``, ``retry``, ``paths``.
"""
