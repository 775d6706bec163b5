"""Output plugins: Transaction -> list of (dataStart, payload) per XLogData. Pure code."""

from __future__ import annotations

from pgshim.errors import PgError
from pgshim.plugins.base import Message, OutputPlugin, PluginContext

PLUGIN_NAMES = ("test_decoding", "wal2json", "pgoutput", "reddb")


def check_plugin(name: str) -> None:
    """Refuse a plugin pgshim does not have, as PostgreSQL refuses a missing library."""
    if name not in PLUGIN_NAMES:
        raise PgError("58P01", f'could not access file "{name}": No such file or directory')


def load_plugin(name: str, options: dict[str, str | None], ctx: PluginContext) -> OutputPlugin:
    """The plugin called ``name``, its options validated (PgError with PostgreSQL's wording)."""
    if name == "test_decoding":
        from pgshim.plugins.test_decoding import TestDecodingPlugin

        return TestDecodingPlugin(options, ctx)
    if name == "wal2json":
        from pgshim.plugins.wal2json import Wal2JsonPlugin

        return Wal2JsonPlugin(options, ctx)
    if name == "pgoutput":
        from pgshim.plugins.pgoutput import PgOutputPlugin

        return PgOutputPlugin(options, ctx)
    if name == "reddb":
        from pgshim.plugins.reddb import RedDBPlugin

        return RedDBPlugin(options, ctx)
    raise PgError("58P01", f'could not access file "{name}": No such file or directory')


__all__ = [
    "Message",
    "OutputPlugin",
    "PluginContext",
    "PLUGIN_NAMES",
    "check_plugin",
    "load_plugin",
]
