"""Common random numbers: every draw is a pure function of (seed, run,
account id, day, action, stream), so a candidate and a baseline that send
the same action to the same account on the same day see the same customer
answer, and the difference between the two runs is the policy's, not noise.

The hash is SplitMix64 (Steele, Lea and Flood 2014) over 64-bit keys, in
numpy: an account's key is the first 8 bytes of BLAKE2b of its id."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["STREAMS", "account_keys", "label_key", "uniforms"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: One stream per kind of draw, so adding a draw never shifts the others.
STREAMS = {"outcome": 1, "dispute": 2, "promise": 3, "kept": 4, "payment": 5, "share": 6, "self_cure": 7}


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def label_key(text: str) -> int:
    """A stable 64-bit key for a text (an account id, a tier id)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def account_keys(ids: list[str]) -> np.ndarray:
    """The 64-bit key of each account id."""
    return np.fromiter((label_key(i) for i in ids), dtype=np.uint64, count=len(ids))


def uniforms(
    accounts: np.ndarray, actions: np.ndarray, *, seed: int, run: int, day: int, stream: str
) -> np.ndarray:
    """Uniform draws in [0, 1), one per (account key, action key) pair."""
    head = np.array([label_key(f"{seed}/{run}/{day}/{STREAMS[stream]}")], dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(_mix(accounts ^ head) ^ actions)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
