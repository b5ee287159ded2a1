"""Issue 13 item 13: passwords are checked for strength (zxcvbn) and commonness, not only length."""

from __future__ import annotations

from pathlib import Path

import pytest

from soclite.control.identity import Role, UserStore
from soclite.control.passwords import check_password
from soclite.control.schema import open_control_db
from soclite.errors import AuthError


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaa", "too weak"),  # long enough, accepted before: one repeated character
        ("1234567890", "common"),
        ("P@ssw0rd123", "common|too weak"),  # l33t does not hide it
        ("qwertyuiop", "common"),
        ("matkhau123", "common"),  # Vietnamese "password123"
        ("Matkhau@123", "common|too weak"),
        ("short", "too short"),
    ],
)
def test_weak_and_common_passwords_are_refused(password: str, why: str) -> None:
    with pytest.raises(AuthError, match=why):
        check_password(password)


def test_password_built_from_the_user_name_is_refused() -> None:
    with pytest.raises(AuthError):
        check_password("nguyenvanlan", user_inputs=["nguyenvanlan"])
    check_password("nguyenvanlan")  # the same string for someone else is just a (long) name


@pytest.mark.parametrize("password", ["correct-horse-battery", "analyst-password-1", "mây trắng bay qua đèo"])
def test_passphrases_pass(password: str) -> None:
    check_password(password)


def test_user_store_refuses_a_weak_admin_password_and_keeps_nothing(tmp_path: Path) -> None:
    db = open_control_db(tmp_path)
    try:
        users = UserStore(db)
        with pytest.raises(AuthError, match="too weak"):
            users.add("root2", "aaaaaaaaaa", role=Role.ADMIN)
        assert users.get_by_name("root2") is None
        users.add("root2", "correct-horse-battery", role=Role.ADMIN)
        with pytest.raises(AuthError, match=r"common|too weak"):
            users.set_password("root2", "password12")
        assert users.verify("root2", "correct-horse-battery").username == "root2"
        # the bar is a setting: a site may ask for the top score
        strict = UserStore(db, min_password_score=4)
        with pytest.raises(AuthError, match="4/4 needed"):
            strict.set_password("root2", "s3cret-Passw0rd")
    finally:
        db.close()
