"""Password policy: length, estimated strength (zxcvbn) and refusal of common passwords.

Length alone let ``aaaaaaaaaa`` through for an admin. zxcvbn (Dropbox's
estimator, the ``zxcvbn`` package on PyPI) scores a password 0-4 by the
guesses an attacker who knows common passwords, words, keyboard walks, dates
and l33t substitutions would need; NIST SP 800-63B asks for exactly that
kind of check against "commonly-used, expected, or compromised" values.
A password that *is* a common password (zxcvbn's list of the 30,000 most
common ones, plus the Vietnamese habits below, with l33t and reversal) is
refused whatever its score, with that reason rather than a number.
"""

from __future__ import annotations

from collections.abc import Iterable

from soclite.errors import AuthError

MIN_PASSWORD_LENGTH = 10
#: zxcvbn scores 0 (too guessable) .. 4 (very unguessable); 3 = "safely unguessable" (~10^8 guesses+)
DEFAULT_MIN_SCORE = 3

#: Common Vietnamese choices that English-centric lists miss ("matkhau" = "password").
VIETNAMESE_COMMON = (
    "matkhau", "matkhau123", "matkhau@123", "123456a@", "anhyeuem", "emyeuanh", "yeuem", "iloveyou",
    "vietnam", "hanoi", "saigon", "admin@123", "quantri", "quantri123", "soctinh", "ubnd", "sotttt",
)


def check_password(password: str, *, min_score: int = DEFAULT_MIN_SCORE, user_inputs: Iterable[str] = ()) -> None:
    """Raise AuthError saying why when ``password`` is too short, common or too guessable.

    ``user_inputs`` are words an attacker knows about the account (user name,
    display name, unit, "soclite"): a password built from them scores lower.
    """
    from zxcvbn import zxcvbn  # imported here: the agent and the CLI's other commands never need it

    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() in VIETNAMESE_COMMON:
        raise AuthError("password refused: it is a common password")
    words = [w for w in user_inputs if w] + ["soclite", *VIETNAMESE_COMMON]
    # zxcvbn's cost grows with length; the first 100 characters decide the score anyway.
    result = zxcvbn(password[:100], user_inputs=words)
    sequence = result["sequence"]
    if len(sequence) == 1 and sequence[0].get("pattern") == "dictionary" and sequence[0].get(
        "dictionary_name"
    ) in ("passwords", "user_inputs"):
        raise AuthError("password refused: it is a common password or built from the account's own name")
    if int(result["score"]) < min_score:
        warning = str(result["feedback"].get("warning") or "").rstrip(".")
        hint = f" ({warning})" if warning else ""
        raise AuthError(
            f"password too weak: strength {result['score']}/4, at least {min_score}/4 needed{hint}; "
            "use a longer passphrase of several uncommon words"
        )
