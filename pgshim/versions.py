"""The PostgreSQL major version pgshim presents itself as (the ``server_version`` setting).

Clients choose what they ask for by the server's version: a PostgreSQL 18 subscriber asks for
pgoutput protocol 4 with parallel streaming, sends its catalog queries in their PostgreSQL 18
form and expects pg_replication_slots with that version's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgshim import __version__

# major -> the minor release reported with it
MINOR_RELEASES = {15: 18, 16: 15, 17: 11, 18: 6}
DEFAULT_MAJOR = 18


@dataclass(frozen=True, slots=True)
class ServerVersion:
    major: int = DEFAULT_MAJOR

    def __post_init__(self) -> None:
        if self.major not in MINOR_RELEASES:
            raise ValueError(f"unsupported server_version {self.major}")

    @property
    def minor(self) -> int:
        return MINOR_RELEASES[self.major]

    @property
    def num(self) -> int:
        """server_version_num: 180006 for 18.6."""
        return self.major * 10000 + self.minor

    @property
    def setting(self) -> str:
        """server_version as ParameterStatus and SHOW give it."""
        return f"{self.major}.{self.minor} (pgshim {__version__})"

    @property
    def banner(self) -> str:
        """What version() answers."""
        return (
            f"PostgreSQL {self.major}.{self.minor} (pgshim {__version__}) on "
            "x86_64-pc-linux-gnu, compiled by Python, 64-bit"
        )


DEFAULT = ServerVersion()
