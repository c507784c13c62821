"""Password policy, hashing and verification (bcrypt through libpass' CryptContext)."""

import pytest

from authsvc.core.passwords import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_CHARS,
    PasswordHasher,
    check_new_password,
    generate_password,
)
from authsvc.errors import InvalidPassword

PASSWORD = "correct horse battery"
ROUNDS = 4  # bcrypt's minimum, to keep the suite fast


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=ROUNDS)


@pytest.fixture(scope="module")
def stored(hasher: PasswordHasher) -> str:
    return hasher.hash(PASSWORD)


@pytest.mark.parametrize(
    "password",
    [
        "a" * MIN_PASSWORD_CHARS,
        "a" * MAX_PASSWORD_BYTES,
        "é" * (MAX_PASSWORD_BYTES // 2),          # 72 bytes in UTF-8
        "päss wörd with spaces",
        "🔑" * MIN_PASSWORD_CHARS,                  # 8 characters, 32 bytes
    ],
    ids=["min-chars", "max-bytes", "max-bytes-2byte", "unicode", "emoji"],
)
def test_check_new_password_accepts(password: str) -> None:
    check_new_password(password)


@pytest.mark.parametrize(
    "password",
    [
        "",
        "a" * (MIN_PASSWORD_CHARS - 1),
        "a" * (MAX_PASSWORD_BYTES + 1),
        "é" * (MAX_PASSWORD_BYTES // 2) + "a",    # 73 bytes, 37 characters
        "€" * 25,                                   # 25 characters but 75 bytes
        "🔑" * 19,                                  # 19 characters, 76 bytes
        "password\x00suffix",
    ],
    ids=["empty", "short", "73-ascii", "73-bytes-2byte", "75-bytes-3byte", "76-bytes-emoji",
         "nul"],
)
def test_check_new_password_refuses(password: str) -> None:
    with pytest.raises(InvalidPassword):
        check_new_password(password)


@pytest.mark.parametrize("password", ["short", "x" * 100])
def test_hash_refuses_what_the_policy_refuses(hasher: PasswordHasher, password: str) -> None:
    with pytest.raises(InvalidPassword):
        hasher.hash(password)


def test_hash_is_salted_bcrypt(hasher: PasswordHasher, stored: str) -> None:
    assert stored.startswith(f"$2b${ROUNDS:02d}$")
    assert PASSWORD not in stored
    assert hasher.hash(PASSWORD) != stored


def test_verify_right_password(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(PASSWORD, stored) == (True, None)


@pytest.mark.parametrize(
    "attempt",
    ["correct horse battery ", "Correct horse battery", "", "correct horse",
     "x" * 100, "correct horse battery" + "\x00"],
    ids=["trailing-space", "case", "empty", "prefix", "over-72-bytes", "nul"],
)
def test_verify_wrong_password(hasher: PasswordHasher, stored: str, attempt: str) -> None:
    assert hasher.verify(attempt, stored) == (False, None)


def test_verify_over_72_bytes_does_not_match_by_truncation(hasher: PasswordHasher) -> None:
    exactly_72 = "a" * MAX_PASSWORD_BYTES
    stored = hasher.hash(exactly_72)
    assert hasher.verify(exactly_72, stored) == (True, None)
    assert hasher.verify(exactly_72 + "b", stored) == (False, None)


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "not-a-hash",
        "$2b$04$short",
        "$2b$04$",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "$1$salt$hash",
        "plaintext-password",
        PASSWORD,
    ],
)
def test_malformed_stored_hash_is_a_wrong_password(hasher: PasswordHasher,
                                                   malformed: str) -> None:
    assert hasher.verify(PASSWORD, malformed) == (False, None)


@pytest.mark.parametrize(
    "damage",
    [lambda h: h[:-5], lambda h: "$2b$99$" + h[7:], lambda h: "$2q$" + h[4:], lambda h: h + "x"],
    ids=["truncated", "rounds-out-of-range", "unknown-ident", "too-long"],
)
def test_damaged_stored_hash_is_a_wrong_password(hasher: PasswordHasher, stored: str,
                                                  damage) -> None:
    assert hasher.verify(PASSWORD, damage(stored)) == (False, None)


@pytest.mark.parametrize("attempt", [PASSWORD, "anything else", ""])
def test_no_stored_hash_is_a_wrong_password(hasher: PasswordHasher, attempt: str) -> None:
    assert hasher.verify(attempt, None) == (False, None)


def test_weaker_hash_is_upgraded_on_login(stored: str) -> None:
    stronger = PasswordHasher(rounds=ROUNDS + 1)
    ok, new_hash = stronger.verify(PASSWORD, stored)
    assert ok is True
    assert new_hash is not None
    assert new_hash.startswith(f"$2b${ROUNDS + 1:02d}$")
    assert stronger.verify(PASSWORD, new_hash) == (True, None)


def test_wrong_password_on_weaker_hash_gets_no_upgrade(stored: str) -> None:
    assert PasswordHasher(rounds=ROUNDS + 1).verify("wrong password", stored) == (False, None)


def test_stronger_hash_is_not_downgraded_on_login(hasher: PasswordHasher) -> None:
    """A hash made with more rounds than configured is kept, not re-hashed at lower cost."""
    stronger_stored = PasswordHasher(rounds=ROUNDS + 2).hash(PASSWORD)
    assert hasher.verify(PASSWORD, stronger_stored) == (True, None)


def test_generated_password_passes_the_policy() -> None:
    first, second = generate_password(), generate_password()
    check_new_password(first)
    assert first != second
    assert len(first) >= 32
