"""The registry protocol without I/O, shared by the sync and async clients.

Every operation is a generator that yields instructions (the closed set in ``instructions``) and receives
the driver's answers; :mod:`dockyard._sync` and :mod:`dockyard.aio` drive them over httpx (with what
:mod:`dockyard.transport` provides). Modules: ``session`` (one logical request: credentials, challenges,
retries), ``credential_kinds``, ``challenge`` / ``challenges`` (parsing ``WWW-Authenticate``; what ``401``s
taught), ``token_cache``, ``token_requests``, ``retry``, ``operations`` (every client operation),
``metadata`` with its twins ``acr_metadata`` and ``oci_metadata``, ``manifests`` / ``blobs`` / ``download``
(content), ``wire`` (ACR JSON), ``paging``, ``responses``, ``paths``.
"""
