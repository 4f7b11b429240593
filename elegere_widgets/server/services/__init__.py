"""What the service does, one request-scoped object per noun.

Each is built by one FastAPI dependency (``server/deps.py``) from the store session, the
caller and the scope; the routes parse, call one method and answer. Reads and commands are
apart: ``…Queries`` only read, the service's own methods change the store.
"""
