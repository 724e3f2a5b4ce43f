"""crls: the latest CRL per issuer key; an index for the CRL publisher's queries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "crls",
        sa.Column("issuer_key_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("this_update", sa.String(27), nullable=False),
        sa.Column("next_update", sa.String(27), nullable=False),
        sa.Column("revoked_through", Position, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("published_position", Position, nullable=False),
    )
    op.create_index(
        "ix_certificates_issuer_revoked", "certificates", ["issuer_key_id", "revoked_position"]
    )


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
