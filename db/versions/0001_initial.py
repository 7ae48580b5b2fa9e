"""The initial schema: hunts, tests, boots, adapters.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "status IN ('running', 'found', 'aborted', 'inconclusive', 'interrupted')"
STATES = "state IN ('spare', 'in_use', 'destroyed')"


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "hunts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("history", sa.String(255), nullable=False),
        sa.Column("history_source", sa.Text(), nullable=False),
        sa.Column("good", sa.String(255), nullable=False),
        sa.Column("bad", sa.String(255), nullable=False),
        sa.Column("good_sha", sa.String(64), nullable=False),
        sa.Column("bad_sha", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("culprit_sha", sa.String(64), nullable=True),
        sa.Column("culprit_subject", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("true_culprit_sha", sa.String(64), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("boots", sa.Integer(), nullable=False),
        sa.Column("installs", sa.Integer(), nullable=False),
        sa.Column("adapters", sa.Integer(), nullable=False),
        sa.Column("lab_minutes", sa.Double(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(STATUSES, name="ck_hunts_status"),
        sa.PrimaryKeyConstraint("id", name="pk_hunts"),
    )
    op.create_index("ix_hunts_strategy", "hunts", ["strategy"])
    op.create_index("ix_hunts_status", "hunts", ["status"])
    op.create_index("ix_hunts_campaign_id", "hunts", ["campaign_id"])
    op.create_table(
        "tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hunt_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("commit_subject", sa.Text(), nullable=False),
        sa.Column("rig", sa.String(255), nullable=False),
        sa.Column("boots", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("adapters_destroyed", sa.Integer(), nullable=False),
        sa.Column("lab_minutes", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hunt_id"], ["hunts.id"], name="fk_tests_hunt_id_hunts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tests"),
        sa.UniqueConstraint("hunt_id", "seq", name="uq_tests_hunt_id_seq"),
    )
    op.create_index("ix_tests_commit_sha", "tests", ["commit_sha"])
    op.create_table(
        "boots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("test_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("bricked", sa.Boolean(), nullable=False),
        sa.Column("stray_write", sa.Boolean(), nullable=False),
        sa.Column("adapter_serial", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["test_id"], ["tests.id"], name="fk_boots_test_id_tests", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_boots"),
        sa.UniqueConstraint("test_id", "attempt", name="uq_boots_test_id_attempt"),
    )
    op.create_table(
        "adapters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hunt_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rig", sa.String(255), nullable=True),
        sa.Column("destroyed_by_test_id", sa.Integer(), nullable=True),
        sa.Column("destroyed_at_boot", sa.Integer(), nullable=True),
        sa.CheckConstraint(STATES, name="ck_adapters_state"),
        sa.ForeignKeyConstraint(
            ["hunt_id"], ["hunts.id"], name="fk_adapters_hunt_id_hunts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["destroyed_by_test_id"],
            ["tests.id"],
            name="fk_adapters_destroyed_by_test_id_tests",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_adapters"),
        sa.UniqueConstraint("hunt_id", "serial", name="uq_adapters_hunt_id_serial"),
    )
    op.create_index("ix_adapters_destroyed_by_test_id", "adapters", ["destroyed_by_test_id"])


def downgrade() -> None:
    """Drop everything (children first)."""
    op.drop_index("ix_adapters_destroyed_by_test_id", table_name="adapters")
    op.drop_table("adapters")
    op.drop_table("boots")
    op.drop_index("ix_tests_commit_sha", table_name="tests")
    op.drop_table("tests")
    op.drop_index("ix_hunts_campaign_id", table_name="hunts")
    op.drop_index("ix_hunts_status", table_name="hunts")
    op.drop_index("ix_hunts_strategy", table_name="hunts")
    op.drop_table("hunts")
