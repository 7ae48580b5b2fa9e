"""Campaigns: many hunts of one scenario, strategies side by side, resumable.

A campaign row names the scenario and the lab; each of its hunts has a slot (the strategy label
and the hunt's index), unique within the campaign, and the worker that claimed it, so several
processes can share a campaign and a re-run finishes only what is missing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The campaigns table; the hunt's slot in its campaign and its claimant."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("hunts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("key", name="uq_campaigns_key"),
    )
    with op.batch_alter_table("hunts") as batch:
        batch.add_column(sa.Column("campaign_label", sa.String(255), nullable=True))
        batch.add_column(sa.Column("campaign_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))
        batch.create_unique_constraint(
            "uq_hunts_campaign_id_campaign_label_campaign_index",
            ["campaign_id", "campaign_label", "campaign_index"],
        )


def downgrade() -> None:
    """Back to 0001."""
    with op.batch_alter_table("hunts") as batch:
        batch.drop_constraint("uq_hunts_campaign_id_campaign_label_campaign_index", type_="unique")
        batch.drop_column("claimed_by")
        batch.drop_column("campaign_index")
        batch.drop_column("campaign_label")
    op.drop_table("campaigns")
