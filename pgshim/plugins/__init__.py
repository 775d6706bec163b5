"""Output plugins: Transaction -> list of (dataStart, payload) per XLogData. Pure code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pgshim.errors import PgError
from pgshim.plugins.base import AheadFraming, Message, OutputPlugin, PluginContext, reused

if TYPE_CHECKING:
    from pgshim.logical.transactions import Transaction

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


def ahead_messages(key: str) -> Callable[[Transaction], list[Message]] | None:
    """Per-transaction messages of the output an ``ahead_key`` names; None for a key no plugin
    renders ahead."""
    name, _, flags = key.partition(":")
    if name == "test_decoding":
        from pgshim.plugins.test_decoding import TestDecodingPlugin

        plugin = TestDecodingPlugin.from_ahead_key(key)
        if plugin is None:
            return None
        render = plugin.render
        return lambda tx: reused(tx, plugin.cache_key, lambda: render(tx))
    if name == "pgoutput" and flags in ("text", "binary"):
        from pgshim.plugins import pgoutput

        return pgoutput.ahead_messages(binary=flags == "binary")
    return None


def ahead_framing(key: str) -> AheadFraming | None:
    """The compiled framing of what ``ahead_messages(key)`` renders, for the transactions it
    takes; None where there is none."""
    name, _, flags = key.partition(":")
    if name == "test_decoding":
        from pgshim.plugins.test_decoding import TestDecodingPlugin

        plugin = TestDecodingPlugin.from_ahead_key(key)
        return None if plugin is None else plugin.ahead_framing()
    if name == "pgoutput" and flags == "text":
        from pgshim.plugins import pgoutput

        return pgoutput.ahead_framing(binary=False)
    return None


def default_ahead_key(name: str) -> str | None:
    """The output a new slot of plugin ``name`` is most likely read in (options left default,
    pgoutput in text), rendered ahead until consumers say otherwise."""
    if name == "test_decoding":
        return load_plugin(name, {}, PluginContext()).ahead_key
    if name == "pgoutput":
        from pgshim.plugins.pgoutput import ahead_key

        return ahead_key(binary=False)
    return None


__all__ = [
    "AheadFraming",
    "Message",
    "OutputPlugin",
    "PluginContext",
    "PLUGIN_NAMES",
    "ahead_framing",
    "ahead_messages",
    "check_plugin",
    "default_ahead_key",
    "load_plugin",
]
