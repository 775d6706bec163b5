"""pgshim: RedDB's logical change stream, served over PostgreSQL's replication protocol."""

__version__ = "0.1.0"
