"""Workflow tables: alerts with handling state, history, silences, outbox, sent messages, work orders.

Revision ID: 0001
Revises: -
Create Date: 2026-11-30 20:11:53.335805
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""

    op.create_table(
        "workflow_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(length=300), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("site_name", sa.String(length=200), nullable=False),
        sa.Column("street", sa.String(length=50), nullable=False),
        sa.Column("domain", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("condition", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("limit", sa.Float(), nullable=True),
        sa.Column("exceedance", sa.Float(), nullable=True),
        sa.Column("standard", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(length=100), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("assignee_kind", sa.String(length=10), nullable=True),
        sa.Column("assigned_by", sa.String(length=100), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.Column("silence_id", sa.Integer(), nullable=True),
        sa.Column("work_order_id", sa.String(length=64), nullable=True),
        sa.Column("work_order_status", sa.String(length=15), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id"),
    )
    with op.batch_alter_table("workflow_alerts", schema=None) as batch_op:
        batch_op.create_index("workflow_alerts_first_seen", ["first_seen"], unique=False)
        batch_op.create_index("workflow_alerts_status", ["status", "condition"], unique=False)

    op.create_table(
        "workflow_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert", sa.Integer(), nullable=True),
        sa.Column("silence", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflow_history", schema=None) as batch_op:
        batch_op.create_index("workflow_history_alert", ["alert", "id"], unique=False)

    op.create_table(
        "workflow_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflow_messages", schema=None) as batch_op:
        batch_op.create_index("workflow_messages_channel", ["channel", "sent_at"], unique=False)

    op.create_table(
        "workflow_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("alert", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflow_outbox", schema=None) as batch_op:
        batch_op.create_index("workflow_outbox_waiting", ["channel", "sent_at", "id"], unique=False)

    op.create_table(
        "workflow_silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("site", sa.String(length=200), nullable=True),
        sa.Column("street", sa.String(length=200), nullable=True),
        sa.Column("rule_id", sa.String(length=200), nullable=True),
        sa.Column("domain", sa.String(length=200), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=100), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "workflow_work_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("alert", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("photo_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    """Revert."""

    op.drop_table("workflow_work_orders")
    op.drop_table("workflow_silences")
    with op.batch_alter_table("workflow_outbox", schema=None) as batch_op:
        batch_op.drop_index("workflow_outbox_waiting")

    op.drop_table("workflow_outbox")
    with op.batch_alter_table("workflow_messages", schema=None) as batch_op:
        batch_op.drop_index("workflow_messages_channel")

    op.drop_table("workflow_messages")
    with op.batch_alter_table("workflow_history", schema=None) as batch_op:
        batch_op.drop_index("workflow_history_alert")

    op.drop_table("workflow_history")
    with op.batch_alter_table("workflow_alerts", schema=None) as batch_op:
        batch_op.drop_index("workflow_alerts_status")
        batch_op.drop_index("workflow_alerts_first_seen")

    op.drop_table("workflow_alerts")
