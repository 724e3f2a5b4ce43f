"""policies: name policies at authority and provisioner level.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("scope", sa.String(100), primary_key=True),
        sa.Column("provisioner_id", sa.String(64), nullable=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("set_position", Position, nullable=False),
    )


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
