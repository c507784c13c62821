"""The token path's reads: the same rows, types and errors as SQLAlchemy would give."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import bindparam, create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import scoped_session, sessionmaker

from authsvc.models import RefreshToken, User, db
from authsvc.reads import Reads
from authsvc.refresh_tokens import REDEEM
from authsvc.state import State

USERS = select(User.username, User.admin, User.created_at).where(
    User.username.like(bindparam("pattern"))).order_by(User.username)


def test_rows_match_what_sqlalchemy_itself_reads(app: Flask, state: State) -> None:
    with app.app_context():
        state.accounts.create_user("alice", "correct horse", admin=True)
        state.accounts.create_user("bob", "correct horse")
        reads = Reads(db.session)
        rows = reads.all(USERS, {"pattern": "%"})
        expected = db.session.execute(USERS, {"pattern": "%"}).all()
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert [(row.username, row.admin) for row in rows] == [("alice", True), ("bob", False)]
    assert all(isinstance(row.created_at, datetime) for row in rows)
    with app.app_context():
        assert reads.first(USERS, {"pattern": "nobody"}) is None


def test_dates_come_back_as_datetimes_on_every_database(app: Flask, state: State) -> None:
    """SQLite stores dates as text: the type's result processor turns them back."""
    with app.app_context():
        state.accounts.create_user("alice", "correct horse")
        secret = state.refresh_tokens.issue("alice", "registry", "docker")
        row = Reads(db.session).first(REDEEM, {"digest": db.session.execute(
            select(RefreshToken.secret_hash)).scalar_one()})
    assert secret
    assert row is not None and row.username == "alice" and row.last_used_at is None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)


def test_an_unreachable_database_raises_sqlalchemy_operational_error(tmp_path: Path) -> None:
    """The API's 503 handler knows SQLAlchemy's errors, not each driver's."""
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/authsvc.db")
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    with pytest.raises(OperationalError):
        reads.first(USERS, {"pattern": "%"})
    engine.dispose()
