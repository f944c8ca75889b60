"""every uploaded check-in record is stored; one per key is kept (the kernel's acceptance rule)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db.ddl import append_only

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


COLUMNS = (
    "seq, id, device_id, environment, event_id, list_id, ticket_id, token_generation, direction, "
    "decision, reason, gate, scanner_did, manual_reason, app_id, device_ms, clock_offset_ms, "
    "server_ms, metadata"
)
# Still append-only: no row is deleted and no column changes, except ``kept`` from true to false
# (another record under the key became the kept one).
GUARDS = {
    "delete": "BEFORE DELETE ON check_in_records",
    "update": f"BEFORE UPDATE OF {COLUMNS} ON check_in_records",
    "unkeep": "BEFORE UPDATE OF kept ON check_in_records FOR EACH ROW WHEN (NOT (OLD.kept AND NOT NEW.kept))",
}


def _guard() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    if not sqlite:
        op.execute("DROP TRIGGER IF EXISTS check_in_records_append_only ON check_in_records")
    for name, when in GUARDS.items():
        if sqlite:
            trigger = when.replace(" FOR EACH ROW", "")
            body = "BEGIN SELECT RAISE(ABORT, 'check_in_records is append-only'); END"
            op.execute(f"CREATE TRIGGER check_in_records_guard_{name} {trigger} {body}")
        else:
            each = "" if "FOR EACH ROW" in when else " FOR EACH ROW"
            op.execute(
                f"CREATE TRIGGER check_in_records_guard_{name} {when}{each} "
                "EXECUTE FUNCTION refuse_append_only_change()"
            )


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS check_in_records_append_only_{operation}")
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kept", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint("uq_check_in_records_device_id_id", type_="unique")
        batch_op.create_index(
            "uq_check_in_records_kept",
            ["device_id", "id"],
            unique=True,
            postgresql_where=sa.text("kept"),
            sqlite_where=sa.text("kept"),
        )
    _guard()


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    for name in GUARDS:
        op.execute(f"DROP TRIGGER check_in_records_guard_{name}" + ("" if sqlite else " ON check_in_records"))
    op.execute("DELETE FROM check_in_records WHERE NOT kept")
    with op.batch_alter_table("check_in_records", schema=None) as batch_op:
        batch_op.drop_index("uq_check_in_records_kept")
        batch_op.create_unique_constraint("uq_check_in_records_device_id_id", ["device_id", "id"])
        batch_op.drop_column("kept")
    append_only("check_in_records")
