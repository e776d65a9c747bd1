"""Counter-based random numbers: every draw is a pure function of (seed, stream, key, label).

Why not one ``np.random.Generator`` per chunk: the files must not change when the chunk
size changes, so a customer's data may only depend on the customer's global index, never
on which chunk it was generated in. Hashing (entity key, attribute label) with SplitMix64
gives that for free, stays fully vectorized over a chunk, and never needs per-row Python.
The stream keys themselves come from ``np.random.SeedSequence([seed, stream])``.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / float(1 << 53)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrap-around arithmetic is intended)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def _mix_int(x: int) -> int:
    """The same finalizer on a Python int, for per-call constants."""
    x &= _MASK
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class KeyedRandom:
    """Deterministic random draws for arrays of integer entity keys.

    ``stream`` separates entity kinds (customers, applications, events, ...) so equal
    keys of different kinds draw independently; ``label`` names the attribute drawn, so
    each attribute of an entity has its own independent value.
    """

    def __init__(self, seed: int, stream: str) -> None:
        words = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(
            2, dtype=np.uint64
        )
        self._k0 = int(words[0])
        self._k1 = np.uint64(int(words[1]))

    def bits(self, keys: np.ndarray, label: str) -> np.ndarray:
        """64 random bits per key."""
        base = np.uint64(_mix_int(self._k0 ^ zlib.crc32(label.encode())))
        x = _mix(np.asarray(keys, dtype=np.uint64) * _GOLDEN + base)
        return _mix(x ^ self._k1)

    def uniform(self, keys: np.ndarray, label: str) -> np.ndarray:
        """Uniform draws in the open interval (0, 1)."""
        return ((self.bits(keys, label) >> _S11).astype(np.float64) + 0.5) * _INV_2_53

    def normal(self, keys: np.ndarray, label: str) -> np.ndarray:
        """Standard normal draws (Box-Muller on two independent uniforms)."""
        u1 = self.uniform(keys, label + "#r")
        u2 = self.uniform(keys, label + "#t")
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def integers(
        self, keys: np.ndarray, low: int, high: np.ndarray | int, label: str
    ) -> np.ndarray:
        """Integers uniform in [low, high) (``high`` may vary per key)."""
        span = np.asarray(high, dtype=np.int64) - low
        return low + np.minimum((self.uniform(keys, label) * span).astype(np.int64), span - 1)

    def bernoulli(self, keys: np.ndarray, p: np.ndarray | float, label: str) -> np.ndarray:
        """Boolean draws that are True with probability ``p``."""
        return self.uniform(keys, label) < p

    def choice(self, keys: np.ndarray, probs: np.ndarray, label: str) -> np.ndarray:
        """Category indices; ``probs`` is (k,) shared or (n, k) per key, rows summing to 1."""
        cum = np.cumsum(np.asarray(probs, dtype=np.float64), axis=-1)
        cum = cum / cum[..., -1:]
        u = self.uniform(keys, label)
        if cum.ndim == 1:
            return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
        return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)

    def poisson(self, keys: np.ndarray, lam: np.ndarray, label: str, cap: int = 60) -> np.ndarray:
        """Poisson counts by inverse transform, truncated at ``cap``."""
        lam = np.asarray(lam, dtype=np.float64)
        u = self.uniform(keys, label)
        prob = np.exp(-lam)
        cdf = prob.copy()
        k = np.zeros(lam.shape, dtype=np.int64)
        for i in range(1, cap + 1):
            more = u > cdf
            if not more.any():
                break
            k += more
            prob = prob * lam / i
            cdf = cdf + prob
        return k


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def ragged_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-parent child counts: each child's parent index and its rank within the parent."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(parent), dtype=np.int64) - starts[parent]
    return parent, rank
