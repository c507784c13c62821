"""organisations and teams: namespaces a group owns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00.000000

``organizations`` (a namespace's name, shared with the user names), ``org_owners`` (user names),
``teams`` of an organisation, ``team_members`` (user names) and ``team_permissions`` (``read``,
``write`` or ``admin`` on ``org/repo`` or ``org/*``).
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'organizations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'org_owners',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'username', name='uq_org_owners'),
    )
    op.create_index(op.f('ix_org_owners_username'), 'org_owners', ['username'], unique=False)
    op.create_table(
        'teams',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=1000), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'name', name='uq_teams_org_name'),
    )
    op.create_table(
        'team_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'username', name='uq_team_members'),
    )
    op.create_index(op.f('ix_team_members_username'), 'team_members', ['username'],
                    unique=False)
    op.create_table(
        'team_permissions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('target', sa.String(length=257), nullable=False),
        sa.Column('permission', sa.String(length=16), nullable=False),
        sa.CheckConstraint("permission IN ('read', 'write', 'admin')",
                           name='ck_team_permissions_permission'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'target', name='uq_team_permissions'),
    )
    op.create_index(op.f('ix_team_permissions_target'), 'team_permissions', ['target'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_team_permissions_target'), table_name='team_permissions')
    op.drop_table('team_permissions')
    op.drop_index(op.f('ix_team_members_username'), table_name='team_members')
    op.drop_table('team_members')
    op.drop_table('teams')
    op.drop_index(op.f('ix_org_owners_username'), table_name='org_owners')
    op.drop_table('org_owners')
    op.drop_table('organizations')
