"""The delivery contract: how RedDB LSNs become PostgreSQL positions.

RedDB numbers its change records with a u64 LSN ``n`` and has no transaction boundaries.
pgshim exposes every record (or group of records) as one PostgreSQL transaction and shifts
the LSN left by 8 bits so that each transaction has room for distinct begin, commit and end
positions:

* ``change_pos(n) = n << 8`` -- the BEGIN (first change of the transaction) and each change;
* ``commit_pos(n) = (n << 8) | 0xFE`` -- pgoutput ``final_lsn``/``commit_lsn``, the start of
  the "commit record" of the transaction whose last record is ``n``;
* ``end_pos(n) = (n << 8) | 0xFF`` -- COMMIT's dataStart and pgoutput ``end_lsn``; the next
  transaction starts at ``(n + 1) << 8 = end_pos(n) + 1``;
* ``lsn_of(pos) = pos >> 8`` -- operators read the RedDB LSN by dropping the last two hex
  digits (``0/7FF`` is the end of RedDB LSN 7).

Delivery rule: with ``start = max(requested, confirmed_flush)``, a transaction is skipped iff
``end_pos <= start`` (equivalently ``commit_pos < start``, PostgreSQL's rule), otherwise it is
sent whole. Clients that confirm a COMMIT's dataStart therefore never see that transaction
again, and clients that confirm an earlier position get it again in full (at-least-once).

A new slot's consistent point is ``end_pos(last LSN in the spool)`` (``0/FF`` when empty).
The xid of a transaction is its first RedDB LSN modulo 2**32.
"""

from __future__ import annotations

_SHIFT = 8
COMMIT_TAG = 0xFE
END_TAG = 0xFF


def change_pos(lsn: int) -> int:
    return lsn << _SHIFT


def commit_pos(lsn: int) -> int:
    return (lsn << _SHIFT) | COMMIT_TAG


def end_pos(lsn: int) -> int:
    return (lsn << _SHIFT) | END_TAG


def lsn_of(pos: int) -> int:
    return pos >> _SHIFT


def covered_lsn(pos: int) -> int:
    """The last RedDB LSN whose transaction is fully confirmed by position ``pos`` (0 if none)."""
    return max(0, lsn_of(pos) if pos & 0xFF == END_TAG else lsn_of(pos) - 1)


def consistent_point(last_lsn: int) -> int:
    """Where a new slot starts: just past the last transaction already in the spool."""
    return end_pos(last_lsn)


def xid_of(first_lsn: int) -> int:
    return first_lsn % (1 << 32)


def should_skip(tx_end_pos: int, start: int) -> bool:
    """True when a transaction ending at ``tx_end_pos`` was already delivered up to ``start``."""
    return tx_end_pos <= start
