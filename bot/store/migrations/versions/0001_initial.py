"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2025-01-01

The first schema: tickets (TMF621), reports, line tests, attachments, repairman
messages, status history, notes, conversation outcomes, handoffs and the inventory
loaded from the world file. Written to run on SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('conversation_outcome',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('step', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('ticket_id', sa.String(length=40), nullable=True),
    sa.Column('fault_number', sa.String(length=20), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_outcome'))
    )
    with op.batch_alter_table('conversation_outcome', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_outcome_conversation_id'), ['conversation_id'], unique=False)

    op.create_table('engineering_work',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engineering_work'))
    )
    op.create_table('exchange',
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('branch', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_exchange'))
    )
    op.create_table('fault_class',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_fault_class'))
    )
    op.create_table('handoff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('fault_number', sa.String(length=20), nullable=True),
    sa.Column('ticket_id', sa.String(length=40), nullable=True),
    sa.Column('line_test', sa.JSON(), nullable=True),
    sa.Column('transcript', sa.JSON(), nullable=False),
    sa.Column('queue', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff'))
    )
    with op.batch_alter_table('handoff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoff_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handoff_queue'), ['queue'], unique=False)
        batch_op.create_index(batch_op.f('ix_handoff_state'), ['state'], unique=False)

    op.create_table('measurement_centre',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('branch', sa.String(length=100), nullable=False),
    sa.Column('completion_deadline_hours', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measurement_centre'))
    )
    op.create_table('subscriber_line',
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('big_customer', sa.Boolean(), nullable=False),
    sa.Column('customer_type', sa.String(length=40), nullable=False),
    sa.Column('branch', sa.String(length=100), nullable=True),
    sa.Column('repaired', sa.Boolean(), nullable=False),
    sa.Column('line_test', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_subscriber_line'))
    )
    op.create_table('ticket',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=40), nullable=False),
    sa.Column('ticket_type', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('fault_number', sa.String(length=20), nullable=True),
    sa.Column('contact_number', sa.String(length=20), nullable=True),
    sa.Column('symptom_category', sa.String(length=40), nullable=True),
    sa.Column('symptom_text', sa.Text(), nullable=True),
    sa.Column('branch', sa.String(length=100), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_change_reason', sa.Text(), nullable=True),
    sa.Column('status_change_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('creation_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expected_resolution_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('world_fault_id', sa.String(length=64), nullable=True),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket')),
    sa.UniqueConstraint('conversation_id', 'fault_number', name='uq_ticket_conversation_fault'),
    sa.UniqueConstraint('world_fault_id', name=op.f('uq_ticket_world_fault_id'))
    )
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_fault_number'), ['fault_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_status'), ['status'], unique=False)

    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('file_path', sa.String(length=500), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_attachment_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment')),
    sa.UniqueConstraint('ticket_id', 'conversation_id', 'content_hash', name='uq_attachment_content')
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('engineering_work_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['work_id'], ['engineering_work.id'], name=op.f('fk_engineering_work_target_work_id_engineering_work'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engineering_work_target'))
    )
    with op.batch_alter_table('engineering_work_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_engineering_work_target_value'), ['value'], unique=False)
        batch_op.create_index(batch_op.f('ix_engineering_work_target_work_id'), ['work_id'], unique=False)

    op.create_table('line_test',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=True),
    sa.Column('fault_number', sa.String(length=20), nullable=False),
    sa.Column('test_id', sa.String(length=64), nullable=False),
    sa.Column('result', sa.String(length=40), nullable=False),
    sa.Column('summary_zh', sa.Text(), nullable=False),
    sa.Column('summary_en', sa.Text(), nullable=False),
    sa.Column('measurements', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_line_test_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_test'))
    )
    with op.batch_alter_table('line_test', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_test_fault_number'), ['fault_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_test_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('repairman_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=False),
    sa.Column('zh', sa.Text(), nullable=False),
    sa.Column('en', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_repairman_message_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repairman_message'))
    )
    with op.batch_alter_table('repairman_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repairman_message_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.Column('contact_number', sa.String(length=20), nullable=True),
    sa.Column('symptom_category', sa.String(length=40), nullable=True),
    sa.Column('symptom_text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_report_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report')),
    sa.UniqueConstraint('ticket_id', 'conversation_id', name='uq_report_ticket_conversation')
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_note_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_note'))
    )
    with op.batch_alter_table('ticket_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_note_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_status_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=40), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_status_change_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_status_change'))
    )
    with op.batch_alter_table('ticket_status_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_status_change_ticket_id'), ['ticket_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('ticket_status_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_status_change_ticket_id'))

    op.drop_table('ticket_status_change')
    with op.batch_alter_table('ticket_note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_note_ticket_id'))

    op.drop_table('ticket_note')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_ticket_id'))

    op.drop_table('report')
    with op.batch_alter_table('repairman_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repairman_message_ticket_id'))

    op.drop_table('repairman_message')
    with op.batch_alter_table('line_test', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_test_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_line_test_fault_number'))

    op.drop_table('line_test')
    with op.batch_alter_table('engineering_work_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_engineering_work_target_work_id'))
        batch_op.drop_index(batch_op.f('ix_engineering_work_target_value'))

    op.drop_table('engineering_work_target')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_ticket_id'))

    op.drop_table('attachment')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_status'))
        batch_op.drop_index(batch_op.f('ix_ticket_fault_number'))
        batch_op.drop_index(batch_op.f('ix_ticket_conversation_id'))

    op.drop_table('ticket')
    op.drop_table('subscriber_line')
    op.drop_table('measurement_centre')
    with op.batch_alter_table('handoff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoff_state'))
        batch_op.drop_index(batch_op.f('ix_handoff_queue'))
        batch_op.drop_index(batch_op.f('ix_handoff_conversation_id'))

    op.drop_table('handoff')
    op.drop_table('fault_class')
    op.drop_table('exchange')
    op.drop_table('engineering_work')
    with op.batch_alter_table('conversation_outcome', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_outcome_conversation_id'))

    op.drop_table('conversation_outcome')

