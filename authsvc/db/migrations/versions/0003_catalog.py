"""what the registry holds: tags, manifests, pull counts, descriptions, seen notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:30:00.000000

Repositories get a description, the time of their last push, a pull count and the time of
their last pull; ``tags`` and ``manifests`` hold what the registry's notifications and
``authsvc registry sync`` report; ``registry_events`` the ids of the notifications recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.String(length=1000), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('pull_count', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('last_pulled_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_repositories_pushed_at'), ['pushed_at'],
                              unique=False)
    op.create_table(
        'tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('digest', sa.String(length=255), nullable=False),
        sa.Column('media_type', sa.String(length=255), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('pushed_by', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repository_id', 'name', name='uq_tags_repository_name'),
    )
    op.create_table(
        'manifests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=255), nullable=False),
        sa.Column('media_type', sa.String(length=255), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repository_id', 'digest', name='uq_manifests_repository_digest'),
    )
    op.create_table(
        'registry_events',
        sa.Column('id', sa.String(length=128), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_registry_events_received_at'), 'registry_events',
                    ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_registry_events_received_at'), table_name='registry_events')
    op.drop_table('registry_events')
    op.drop_table('manifests')
    op.drop_table('tags')
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repositories_pushed_at'))
        batch_op.drop_column('last_pulled_at')
        batch_op.drop_column('pull_count')
        batch_op.drop_column('pushed_at')
        batch_op.drop_column('description')
