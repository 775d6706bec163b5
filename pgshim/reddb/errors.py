"""The decode error shared by the ChangeRecord, entity and value decoders."""

from __future__ import annotations


class ChangeDecodeError(Exception):
    """A record that could not be decoded.

    lsn is the RedDB LSN of the record when known; position is the byte position inside the
    entity bytes (or the JSON payload) where decoding failed, when it applies.
    """

    def __init__(self, reason: str, *, lsn: int | None = None, position: int | None = None) -> None:
        self.reason = reason
        self.lsn = lsn
        self.position = position
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.reason]
        if self.lsn is not None:
            parts.append(f"lsn {self.lsn}")
        if self.position is not None:
            parts.append(f"byte {self.position}")
        return ", ".join(parts)

    def with_lsn(self, lsn: int | None) -> ChangeDecodeError:
        """The same error stamped with the record's LSN (if it has none yet)."""
        if self.lsn is not None or lsn is None:
            return self
        return ChangeDecodeError(self.reason, lsn=lsn, position=self.position)
