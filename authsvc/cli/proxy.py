"""``authsvc proxy-config``: the nginx front of the registry (filled in by the catalog work)."""
