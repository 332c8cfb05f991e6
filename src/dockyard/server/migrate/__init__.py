"""``dockyard migrate``: move a whole registry from one metadata database and blob store to another.

:mod:`.rows` reads and writes the metadata tables by their natural keys, :mod:`.blobs` copies and verifies blobs,
:mod:`.verify` compares source and destination, and :mod:`.run` puts the steps together.
"""
