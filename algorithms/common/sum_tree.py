"""The sum tree of prioritized replay (Schaul et al. 2016): proportional sampling in O(log N).

Example:
    >>> tree = SumTree(4)
    >>> tree.set(np.arange(4), np.array([1.0, 0.0, 3.0, 0.0]))
    >>> tree.total, tree.find(np.array([0.5, 1.5, 3.9])).tolist()
    (4.0, [0, 2, 2])
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Sums of priorities over a binary tree, for proportional sampling in O(log N) per item."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(1, int(np.ceil(np.log2(capacity))))
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        nodes = np.asarray(indices, dtype=np.int64) + self.leaves
        self.tree[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(indices, dtype=np.int64) + self.leaves]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index whose prefix-sum interval holds each value of `mass` (in [0, total))."""
        nodes = np.ones(len(mass), dtype=np.int64)
        mass = mass.astype(np.float64).copy()
        while nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            go_right = mass >= left
            mass -= left * go_right
            nodes = 2 * nodes + go_right
        return nodes - self.leaves
