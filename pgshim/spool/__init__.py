"""RedDB's logical WAL spool (RDLW frames): read-only follower, seek index and a test writer."""

from pgshim.spool.paths import SPOOL_SUFFIX, spool_path

__all__ = ["SPOOL_SUFFIX", "spool_path"]
