"""Projection tables: authority, authority_keys, provisioners, certificates, activity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projection_positions",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", Position, nullable=False),
    )
    op.create_table(
        "authority",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("root_fingerprint", sa.String(64), nullable=False),
        sa.Column("initialized_at", sa.String(27), nullable=False),
        sa.Column("initialized_position", Position, nullable=False),
    )
    op.create_table(
        "authority_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("certificate", sa.Text, nullable=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("key_ref", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("activated_position", Position, nullable=False),
        sa.Column("retired_position", Position, nullable=True),
    )
    op.create_table(
        "provisioners",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("kid", sa.String(100), nullable=True, unique=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("encrypted_key", sa.Text, nullable=True),
        sa.Column("claims", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("added_position", Position, nullable=False),
        sa.Column("updated_position", Position, nullable=False),
    )
    op.create_table(
        "certificates",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("sans", sa.Text, nullable=False),
        sa.Column("not_before", sa.String(27), nullable=False),
        sa.Column("not_after", sa.String(27), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("provisioner_id", sa.String(64), nullable=True),
        sa.Column("provisioner_name", sa.String(200), nullable=True),
        sa.Column("issuer_key_id", sa.String(64), nullable=False),
        sa.Column("token_id", sa.String(200), nullable=True),
        sa.Column("renewed_from", sa.String(40), nullable=True),
        sa.Column("rekeyed_from", sa.String(40), nullable=True),
        sa.Column("certificate", sa.Text, nullable=False),
        sa.Column("issued_position", Position, nullable=False),
        sa.Column("revoked_at", sa.String(27), nullable=True),
        sa.Column("revocation_reason_code", sa.Integer, nullable=True),
        sa.Column("revocation_reason", sa.Text, nullable=True),
        sa.Column("revoked_position", Position, nullable=True),
    )
    op.create_index("ix_certificates_not_after", "certificates", ["not_after"])
    op.create_index("ix_certificates_provisioner", "certificates", ["provisioner_name"])
    op.create_table(
        "activity",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", "type", name="pk_activity"),
    )


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
