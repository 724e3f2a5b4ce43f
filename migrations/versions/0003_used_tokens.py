"""used_tokens: one-time tokens already spent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "used_tokens",
        sa.Column("token_id", sa.String(200), primary_key=True),
        sa.Column("provisioner_id", sa.String(64), nullable=True),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("used_position", Position, nullable=False),
    )


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
