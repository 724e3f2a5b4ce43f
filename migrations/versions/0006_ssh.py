"""ssh: the ssh_certificates and ssh_hosts projections.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ssh_certificates",
        sa.Column("serial", sa.String(20), primary_key=True),
        sa.Column("cert_type", sa.String(10), nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("principals", sa.Text, nullable=False),
        sa.Column("valid_after", sa.String(27), nullable=False),
        sa.Column("valid_before", sa.String(27), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("provisioner_id", sa.String(64), nullable=True),
        sa.Column("provisioner_name", sa.String(200), nullable=True),
        sa.Column("issuer_key_id", sa.String(64), nullable=False),
        sa.Column("token_id", sa.String(200), nullable=True),
        sa.Column("renewed_from", sa.String(20), nullable=True),
        sa.Column("rekeyed_from", sa.String(20), nullable=True),
        sa.Column("certificate", sa.Text, nullable=False),
        sa.Column("issued_position", Position, nullable=False),
        sa.Column("revoked_at", sa.String(27), nullable=True),
        sa.Column("revocation_reason_code", sa.Integer, nullable=True),
        sa.Column("revocation_reason", sa.Text, nullable=True),
        sa.Column("revoked_position", Position, nullable=True),
    )
    op.create_index("ix_ssh_certificates_valid_before", "ssh_certificates", ["valid_before"])
    op.create_table(
        "ssh_hosts",
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("serial", sa.String(20), nullable=False),
        sa.Column("valid_after", sa.String(27), nullable=False),
        sa.Column("valid_before", sa.String(27), nullable=False),
        sa.Column("issued_position", Position, nullable=False),
        sa.PrimaryKeyConstraint("principal", "serial", name="pk_ssh_hosts"),
    )
    op.create_index("ix_ssh_hosts_serial", "ssh_hosts", ["serial"])
    op.create_index("ix_ssh_hosts_valid_before", "ssh_hosts", ["valid_before"])


def downgrade() -> None:
    raise RuntimeError("the ledger is never downgraded: restore a backup instead")
