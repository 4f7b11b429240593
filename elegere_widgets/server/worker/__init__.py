"""The worker: takes due messages from the store and delivers them through their servers.

The queue (Huey) only wakes a worker; the store is the record. A worker leases a message
in the store before it sends (``delivery.claim``), so a killed worker's message becomes due
again when its lease expires, and the sweep (``sweep.py``) re-enqueues every due message a
lost queue entry would otherwise leave behind. Nothing here imports the web framework.
"""
