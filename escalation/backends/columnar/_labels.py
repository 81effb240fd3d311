"""A column of a few distinct strings (or nulls) over a batch, kept as small
integer codes into a list of its words: the ladder's status, action, channel,
hold and ``next_eligible_at``. Writing a word into rows, comparing with a word
and building the Arrow string column cost no Python per row (an object array
of 32k strings costs ~1.5 ms to turn into Arrow, and as much to compare)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["Labels"]

NULL = -1


class Labels:
    """Per row: ``words[codes[i]]``, or ``None`` where the code is -1."""

    __slots__ = ("codes", "index", "words")

    def __init__(self, n: int) -> None:
        self.codes = np.full(n, NULL, np.int32)
        self.words: list[str] = []
        self.index: dict[str, int] = {}

    def code(self, word: str) -> int:
        found = self.index.get(word)
        if found is None:
            found = self.index[word] = len(self.words)
            self.words.append(word)
        return found

    def put(self, rows: np.ndarray, word: str | None) -> None:
        """Write ``word`` (``None``: null) into ``rows`` (a mask or indices)."""
        self.codes[rows] = NULL if word is None else self.code(word)

    def put_each(self, rows: np.ndarray, words: list[str], which: np.ndarray) -> None:
        """Write ``words[which[k]]`` into ``rows[k]`` (each distinct word coded once)."""
        codes = np.asarray([self.code(w) for w in words], np.int32)
        self.codes[rows] = codes[which]

    def equals(self, word: str) -> np.ndarray:
        """Rows holding ``word``."""
        found = self.index.get(word)
        if found is None:
            return np.zeros(len(self.codes), bool)
        result: np.ndarray = self.codes == found
        return result

    def differs(self, other: Labels) -> np.ndarray:
        """Rows whose word is not ``other``'s (null equal to null)."""
        result: np.ndarray = self.codes != self._mine(other)
        return result

    def _mine(self, other: Labels) -> np.ndarray:
        """``other``'s codes in this column's words (-2 for a word this column lacks)."""
        lut = np.asarray([self.index.get(w, -2) for w in other.words] + [NULL], np.int32)
        result: np.ndarray = lut[other.codes]
        return result

    def assign(self, rows: np.ndarray, other: Labels) -> None:
        """Write ``other``'s rows (one per row of ``rows``, indices) into ``rows``."""
        for word in other.words:
            self.code(word)
        self.codes[rows] = self._mine(other)

    def copy(self) -> Labels:
        twin = Labels(0)
        twin.codes, twin.words, twin.index = self.codes.copy(), list(self.words), dict(self.index)
        return twin

    def objects(self) -> np.ndarray:
        """The column as an object array of ``str`` and ``None``."""
        table = np.empty(len(self.words) + 1, dtype=object)  # the last slot (code -1): None
        table[: len(self.words)] = self.words
        result: np.ndarray = table[self.codes]
        return result

    def __len__(self) -> int:
        return len(self.codes)


def arrow_strings(codes: np.ndarray, words: list[str]) -> pa.Array:
    """The Arrow string column of ``codes`` into ``words`` (-1: null)."""
    null = codes < 0
    if not len(words) or null.all():
        return pa.nulls(len(codes), pa.string())
    indices = pa.array(
        np.where(null, 0, codes).astype(np.int32), pa.int32(), mask=null if null.any() else None
    )
    return pa.array(words, pa.string()).take(indices)  # (a null index takes a null)
