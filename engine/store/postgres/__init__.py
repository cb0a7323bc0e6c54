"""The run store in a lab's PostgreSQL database: ``PgRunStore``, a second ``RunRepository``.

SQLite (engine/store/store.py) is the embedded default for one person on one machine; this
backend is for a lab, where every machine's runs meet in one database. Both pass the same
contract suite (tests/store/test_contract.py). It talks to the server through psycopg 3
directly; the modules are named for what they hold: connect (addresses and errors), schema
(tables and migrations), lease (heartbeats on the server's clock), points (COPY and roll-ups),
curves, runs_sql (the Runs search), and the class: store (opening), base (the connection),
runs, metrics and files (its methods, by what they touch).
"""

from cnn_lab.engine.store.postgres.store import PgRunStore

__all__ = ["PgRunStore"]
