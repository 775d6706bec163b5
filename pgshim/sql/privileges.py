"""Role attributes from the configuration, and the privilege checks PostgreSQL makes on them.

With no ``[users]`` configured (trust on loopback, any user name) every session is a superuser,
as the bootstrap role of a fresh PostgreSQL cluster. With users, a role is what its
``users.NAME`` table declares: ``superuser`` (which includes replication) and ``replication``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgshim.errors import PgError
from pgshim.versions import DEFAULT as DEFAULT_VERSION

if TYPE_CHECKING:
    from pgshim.config import Config

INSUFFICIENT_PRIVILEGE = "42501"


def slot_permission_error(major: int) -> PgError:
    """CheckSlotPermissions' error, as PostgreSQL ``major`` words it (16 reworded it)."""
    if major < 16:
        return PgError(
            INSUFFICIENT_PRIVILEGE, "must be superuser or replication role to use replication slots"
        )
    return PgError(
        INSUFFICIENT_PRIVILEGE,
        "permission denied to use replication slots",
        detail="Only roles with the REPLICATION attribute may use replication slots.",
    )


def walsender_permission_error(major: int) -> PgError:
    """The FATAL error of a replication connection by a role without REPLICATION."""
    if major < 16:
        return PgError(
            INSUFFICIENT_PRIVILEGE,
            "must be superuser or replication role to start walsender",
            severity="FATAL",
        )
    return PgError(
        INSUFFICIENT_PRIVILEGE,
        "permission denied to start WAL sender",
        severity="FATAL",
        detail="Only roles with the REPLICATION attribute may start a WAL sender process.",
    )


@dataclass(frozen=True, slots=True)
class Role:
    superuser: bool
    replication: bool  # rolreplication, or what a superuser is allowed anyway


def role_of(config: Config, user: str) -> Role:
    if not config.users:
        return Role(superuser=True, replication=True)
    declared = config.users.get(user)
    if declared is None:  # cannot authenticate; nothing is granted
        return Role(superuser=False, replication=False)
    return Role(declared.superuser, declared.superuser or declared.replication)


def _info(session: Any) -> Any:
    """The SessionInfo of a SQL session (None outside a session: no privileges)."""
    return getattr(session, "info", None)


def is_superuser(session: Any) -> bool:
    info = _info(session)
    return bool(info is not None and info.is_superuser)


def may_use_replication_slots(session: Any) -> bool:
    info = _info(session)
    return bool(info is not None and (info.is_superuser or info.rolreplication))


def check_slot_permissions(session: Any) -> None:
    """PostgreSQL's CheckSlotPermissions: before any slot function touches a slot."""
    if not may_use_replication_slots(session):
        raise slot_permission_error(getattr(session, "major", DEFAULT_VERSION.major))


def sees_details_of(session: Any, user: str) -> bool:
    """Whether the querying session sees the details of another backend run by ``user``:
    a superuser (pg_read_all_stats) sees everyone's, any role sees its own."""
    info = _info(session)
    return info is not None and (info.is_superuser or info.user == user)
