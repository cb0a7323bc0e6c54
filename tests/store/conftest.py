"""The store tests' PostgreSQL fixtures (``pg_cluster``, ``pg_url``) live in tests/conftest.py,
since the engine's and the window's tests open a PostgreSQL run store too."""
