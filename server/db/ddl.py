"""DDL the ORM does not express, shared by the migrations."""

from __future__ import annotations

from alembic import op

APPEND_ONLY_SQLITE = """
CREATE TRIGGER {table}_append_only_{op} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END
"""

APPEND_ONLY_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION refuse_append_only_change() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql
"""

APPEND_ONLY_PG_TRIGGER = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change()
"""


def append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` in the database itself."""
    if op.get_context().dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(APPEND_ONLY_SQLITE.format(table=table, op=operation))
    else:
        op.execute(APPEND_ONLY_PG_FUNCTION)
        op.execute(APPEND_ONLY_PG_TRIGGER.format(table=table))
