"""revoked_unissued: serials revoked without being issued by this ledger (X.509 and SSH).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _columns(serial_length: int) -> list[sa.Column[object]]:
    return [
        sa.Column("serial", sa.String(serial_length), primary_key=True),
        sa.Column("revoked_at", sa.String(27), nullable=False),
        sa.Column("revocation_reason_code", sa.Integer, nullable=False),
        sa.Column("revocation_reason", sa.Text, nullable=False),
        sa.Column("provisioner_id", sa.String(64), nullable=False),
        sa.Column("provisioner_name", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(200), nullable=False),
        sa.Column("revoked_position", Position, nullable=False),
    ]


def upgrade() -> None:
    op.create_table("revoked_unissued", *_columns(40))
    op.create_index("ix_revoked_unissued_position", "revoked_unissued", ["revoked_position"])
    op.create_table("ssh_revoked_unissued", *_columns(20))
    op.create_index(
        "ix_ssh_revoked_unissued_position", "ssh_revoked_unissued", ["revoked_position"]
    )


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
