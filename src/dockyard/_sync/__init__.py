"""The synchronous client: runs the shared protocol generators over ``httpx.Client``."""
