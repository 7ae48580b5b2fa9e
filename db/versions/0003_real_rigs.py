"""Real rigs: a test may install or keep what its rig had, may be skipped, and carries a note; a
boot keeps its command's exit status, wall time and the tail of its output (console capture),
and a real boot has no seed; a hunt's box of adapters may be bottomless.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """New columns; every test logged before installed its kernel and was not skipped, and every
    hunt's adapters were listed when it started."""
    with op.batch_alter_table("hunts") as batch:
        batch.add_column(sa.Column("bottomless_box", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("tests") as batch:
        batch.add_column(sa.Column("installed", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column("skipped", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("boots") as batch:
        batch.alter_column("seed", existing_type=sa.BigInteger(), nullable=True)
        batch.add_column(sa.Column("exit_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("seconds", sa.Double(), nullable=True))
        batch.add_column(sa.Column("output", sa.Text(), nullable=True))


def downgrade() -> None:
    """Back to 0002 (real boots lose their console; a seedless boot cannot go back)."""
    with op.batch_alter_table("boots") as batch:
        batch.drop_column("output")
        batch.drop_column("seconds")
        batch.drop_column("exit_status")
        batch.alter_column("seed", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("hunts") as batch:
        batch.drop_column("bottomless_box")
    with op.batch_alter_table("tests") as batch:
        batch.drop_column("note")
        batch.drop_column("skipped")
        batch.drop_column("installed")
