"""Commands of the API package: tokens, users and audit verification."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from soclite.control.identity import Role
from soclite.errors import AuthError


@click.group("token")
def token_group() -> None:
    """Bearer tokens for automation and agents."""


@token_group.command("create")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--unit", default=None, help="Unit code the token is bound to (its subtree).")
@click.option("--name", default=None)
@click.option("--days", type=int, default=None,
              help="Lifetime in days (people's tokens: default auth.token_days, at most auth.token_max_days; "
                   "agent tokens: no expiry unless given).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def token_create(data_dir: Path, role: str, unit: str | None, name: str | None, days: int | None,
                 config_file: Path | None) -> None:
    """Print a new bearer token (only the token) on stdout; the issue is audited (id, never the secret).

    An unknown ``--unit`` is refused (exit 2): a token bound to a unit nobody
    created sees nothing, or — once someone creates that code — more than meant.
    """
    from soclite.config import load_cli_settings
    from soclite.control import audit
    from soclite.control.identity import token_lifetime
    from soclite.models import isoformat
    from soclite.runtime import Runtime

    settings = load_cli_settings(config_file, data_dir=data_dir)
    runtime = Runtime.build(settings)
    try:
        _require_unit(runtime, unit, "token create")
        try:
            lifetime = token_lifetime(role, days, default_days=settings.auth.token_days,
                                      max_days=settings.auth.token_max_days)
        except AuthError as exc:
            click.echo(f"soclite token create: {exc}", err=True)
            sys.exit(2)
        actor = audit.cli_actor()
        token = runtime.identity.create_token(role=role, unit=unit, name=name, days=lifetime, created_by=actor)
        token_id = token.split("_", 2)[1]
        info = runtime.identity.get_token(token_id)
        expires = isoformat(info.expires_at) if info and info.expires_at else None
        audit.append(runtime.store, actor, "token.create", f"token:{token_id}", None,
                     {"role": role, "unit": unit, "name": name, "expires_at": expires}, unit)
        click.echo(token)
    finally:
        runtime.close()


@token_group.command("list")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--all", "include_inactive", is_flag=True, help="Also revoked and expired tokens.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def token_list(data_dir: Path, include_inactive: bool, config_file: Path | None) -> None:
    """List tokens: id, name, role, unit, state, expiry (tab-separated; never a secret)."""
    from soclite.models import isoformat, utcnow

    with _runtime(data_dir, config_file) as runtime:
        now = utcnow()
        click.echo("id\tname\trole\tunit\tstate\texpires_at\tcreated_by")
        for t in runtime.identity.list_tokens(include_inactive=include_inactive):
            expires = isoformat(t.expires_at) if t.expires_at else "never"
            click.echo(f"{t.id}\t{t.name}\t{t.role.value}\t{t.unit or '-'}\t{t.state(now)}\t{expires}\t"
                       f"{t.created_by or '-'}")


@token_group.command("revoke")
@click.argument("token_id")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None)
def token_revoke(token_id: str, data_dir: Path, config_file: Path | None) -> None:
    """Revoke a token by its id (the part after ``sl_``); audited. Exit 1 if unknown or already revoked."""
    from soclite.control import audit
    from soclite.models import utcnow

    with _runtime(data_dir, config_file) as runtime:
        token = runtime.identity.get_token(token_id)
        if token is None:
            raise click.ClickException(f"no token {token_id!r}")
        if not runtime.identity.revoke_token(token.id):
            raise click.ClickException(f"token {token_id!r} is already revoked")
        audit.append(runtime.store, audit.cli_actor(), "token.revoke", f"token:{token.id}",
                     {"state": token.state(utcnow())}, {"state": "revoked", "name": token.name,
                                                        "role": token.role.value}, token.unit)
        click.echo(f"token {token.id} ({token.name}) revoked")


def _require_unit(runtime: Any, unit: str | None, command: str) -> None:
    """Exit 2 on a unit nobody created: bound to it, a token or user sees nothing, or — once
    someone creates that code — more than meant."""
    if unit is not None and unit not in {u.code for u in runtime.store.list_units()}:
        click.echo(
            f"soclite {command}: unknown unit {unit!r}; create the unit first "
            "(POST /api/v1/units as a province admin, or Admin → Units in the web UI)",
            err=True,
        )
        sys.exit(2)


@contextmanager
def _runtime(data_dir: Path, config_file: Path | None) -> Iterator[Any]:
    """The runtime of a user command: closed afterwards, an identity refusal shown as a CLI error."""
    from soclite.config import load_cli_settings
    from soclite.runtime import Runtime

    runtime = Runtime.build(load_cli_settings(config_file, data_dir=data_dir))
    try:
        yield runtime
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        runtime.close()


@click.group("user")
def user_group() -> None:
    """Local users of the web UI (argon2 password hashes)."""


_common = [
    click.option("--data-dir", type=click.Path(path_type=Path), required=True),
    click.option("--config", "config_file", type=click.Path(path_type=Path), default=None),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


_PERSON_ROLES = [r.value for r in Role if r is not Role.AGENT]


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(_PERSON_ROLES), required=True)
@click.option("--unit", default=None, help="Unit code the user is bound to (its subtree).")
@click.option("--name", "display_name", default=None, help="Display name.")
@click.option("--password", default=None, help="Password (default: generate one and print it once).")
@_with_common
def user_add(username: str, role: str, unit: str | None, display_name: str | None, password: str | None,
             data_dir: Path, config_file: Path | None) -> None:
    """Create a user; a generated password is printed once."""
    from soclite.control import audit
    from soclite.control.identity import generate_password

    with _runtime(data_dir, config_file) as runtime:
        _require_unit(runtime, unit, "user add")
        secret = password or generate_password()
        user = runtime.users.add(username, secret, role=role, unit=unit, display_name=display_name)
        audit.append(runtime.store, "cli", "user.add", f"user:{user.username}", None,
                     {"role": user.role.value, "unit": user.unit}, user.unit)
        click.echo(f"user {user.username} created (role {user.role.value}, unit {user.unit or '-'})")
        if password is None:
            click.echo(f"password: {secret}")


@user_group.command("set-role")
@click.argument("username")
@click.option("--role", type=click.Choice(_PERSON_ROLES), required=True)
@click.option("--unit", default=None, help="Bind to this unit (default: keep the current binding).")
@click.option("--province", is_flag=True, help="Unbind from any unit (whole province).")
@_with_common
def user_set_role(username: str, role: str, unit: str | None, province: bool, data_dir: Path,
                  config_file: Path | None) -> None:
    """Change a user's role (and unit); their sessions end."""
    from soclite.control import audit

    with _runtime(data_dir, config_file) as runtime:
        users = runtime.users
        before = users.get_by_name(username)
        user = users.set_role(username, role, unit, keep_unit=not province)
        audit.append(runtime.store, "cli", "user.set_role", f"user:{user.username}",
                     {"role": before.role.value, "unit": before.unit} if before else None,
                     {"role": user.role.value, "unit": user.unit}, user.unit)
        click.echo(f"user {user.username}: role {user.role.value}, unit {user.unit or '-'}")


@user_group.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@_with_common
def user_disable(username: str, enable: bool, data_dir: Path, config_file: Path | None) -> None:
    """Disable (or --enable) an account; its sessions end at once."""
    from soclite.control import audit

    with _runtime(data_dir, config_file) as runtime:
        user = runtime.users.set_disabled(username, not enable)
        audit.append(runtime.store, "cli", "user.enable" if enable else "user.disable", f"user:{user.username}",
                     {"disabled": enable}, {"disabled": not enable}, user.unit)
        click.echo(f"user {user.username} {'enabled' if enable else 'disabled'}")


@user_group.command("reset-password")
@click.argument("username")
@click.option("--password", default=None, help="New password (default: generate one and print it once).")
@_with_common
def user_reset_password(username: str, password: str | None, data_dir: Path, config_file: Path | None) -> None:
    """Set a new password; existing sessions of the user end."""
    from soclite.control import audit
    from soclite.control.identity import generate_password

    with _runtime(data_dir, config_file) as runtime:
        secret = password or generate_password()
        user = runtime.users.set_password(username, secret)
        audit.append(runtime.store, "cli", "user.reset_password", f"user:{user.username}", None, None, user.unit)
        click.echo(f"password of {user.username} reset")
        if password is None:
            click.echo(f"password: {secret}")


@user_group.command("unlock")
@click.argument("username")
@_with_common
def user_unlock(username: str, data_dir: Path, config_file: Path | None) -> None:
    """Unlock an account locked after repeated failed logins."""
    from soclite.control import audit

    with _runtime(data_dir, config_file) as runtime:
        before = runtime.users.get_by_name(username)
        user = runtime.users.unlock(username)
        audit.append(runtime.store, audit.cli_actor(), "user.unlock", f"user:{user.username}",
                     {"locked": bool(before and before.locked_at), "failed_logins": before.failed_logins if before else 0},
                     {"locked": False, "failed_logins": 0}, user.unit)
        click.echo(f"user {user.username} unlocked")


@user_group.command("list")
@_with_common
def user_list(data_dir: Path, config_file: Path | None) -> None:
    """List users."""

    with _runtime(data_dir, config_file) as runtime:
        for user in runtime.users.all():
            state = "disabled" if user.disabled else "locked" if user.locked_at else "active"
            click.echo(f"{user.username}\t{user.role.value}\t{user.unit or '-'}\t{state}")


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@_with_common
def audit_verify(data_dir: Path, config_file: Path | None) -> None:
    """Recompute the hash chain; exit 1 and name the first broken seq if it was tampered with."""
    from soclite.config import load_cli_settings
    from soclite.control import audit
    from soclite.store import open_store

    store = open_store(load_cli_settings(config_file, data_dir=data_dir))
    try:
        result = audit.verify(store.iter_audit())
    finally:
        store.close()
    if result.ok:
        click.echo(f"audit chain OK: {result.checked} entries verified")
        return
    click.echo(f"audit chain BROKEN at seq {result.first_broken_seq}: {result.reason} "
               f"({result.checked} entries before it verified)", err=True)
    click.echo(f"first_broken_seq={result.first_broken_seq}")
    raise SystemExit(1)


commands: list[click.Command] = [token_group, user_group, audit_group]
