"""grants name users by username

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:20:00.000000

A grant names a user by username, whether or not an account of that name exists, so that no
answer about a grant depends on whether a user exists (issue 10, finding 11a). Existing rows
keep their user's name. On SQLite the table is rebuilt (batch mode); on PostgreSQL it is
altered in place.
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username', sa.String(length=255), nullable=True))
    op.execute("UPDATE grants SET username = "
               "(SELECT users.username FROM users WHERE users.id = grants.user_id)")
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.alter_column('username', existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_constraint('uq_grants_user_target', type_='unique')
        batch_op.drop_index(batch_op.f('ix_grants_user_id'))
        batch_op.drop_column('user_id')  # its foreign key goes with it
        batch_op.create_unique_constraint('uq_grants_username_target', ['username', 'target'])


def downgrade() -> None:
    # A grant to a name without an account has no user to point to: it is dropped.
    op.execute("DELETE FROM grants WHERE username NOT IN (SELECT username FROM users)")
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
    op.execute("UPDATE grants SET user_id = "
               "(SELECT users.id FROM users WHERE users.username = grants.username)")
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint('uq_grants_username_target', type_='unique')
        batch_op.drop_column('username')
        batch_op.create_foreign_key('grants_user_id_fkey', 'users', ['user_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_index(batch_op.f('ix_grants_user_id'), ['user_id'], unique=False)
        batch_op.create_unique_constraint('uq_grants_user_target', ['user_id', 'target'])
