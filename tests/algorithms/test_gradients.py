"""The shared gradient cleaning and global-norm clip (algorithms/common/gradients.py)."""

from __future__ import annotations

import math

import pytest
import torch

from algorithms.common.gradients import clean_and_clip, global_norm, zero_non_finite


def _grads(*values: list[float]) -> dict[str, torch.Tensor]:
    return {f"p{i}": torch.tensor(v) for i, v in enumerate(values)}


def test_global_norm_is_the_norm_of_all_entries_together() -> None:
    assert global_norm(_grads([3.0], [4.0, 0.0])) == pytest.approx(5.0)


def test_finite_gradients_are_left_as_they_are() -> None:
    grads = _grads([3.0], [4.0])
    cleaned, norm = zero_non_finite(grads)
    assert norm == pytest.approx(5.0)
    assert all(cleaned[key] is grads[key] for key in grads)


def test_nan_and_inf_entries_become_zero_and_the_rest_stay() -> None:
    cleaned, norm = zero_non_finite(_grads([1.0, math.nan], [math.inf, -math.inf, 2.0]))
    assert not math.isfinite(norm)
    assert cleaned["p0"].tolist() == [1.0, 0.0]
    assert cleaned["p1"].tolist() == [0.0, 0.0, 2.0]


def test_clip_scales_every_gradient_to_the_global_bound() -> None:
    clipped, norm = clean_and_clip(_grads([6.0], [8.0]), max_norm=5.0)
    assert norm == pytest.approx(10.0)  # the norm before the clip
    assert clipped["p0"].item() == pytest.approx(3.0, rel=1e-5)
    assert clipped["p1"].item() == pytest.approx(4.0, rel=1e-5)


def test_clip_leaves_gradients_within_the_bound_alone() -> None:
    clipped, _ = clean_and_clip(_grads([3.0], [4.0]), max_norm=5.0)
    assert clipped["p0"].item() == 3.0 and clipped["p1"].item() == 4.0


@pytest.mark.parametrize("max_norm", [None, 0])
def test_no_bound_means_no_clip(max_norm: float | None) -> None:
    clipped, _ = clean_and_clip(_grads([30.0], [40.0]), max_norm=max_norm)
    assert clipped["p0"].item() == 30.0 and clipped["p1"].item() == 40.0


def test_clip_uses_the_norm_of_the_cleaned_gradients() -> None:
    clipped, norm = clean_and_clip(_grads([6.0, math.nan], [8.0]), max_norm=5.0)
    assert not math.isfinite(norm)
    assert clipped["p0"].tolist() == pytest.approx([3.0, 0.0], rel=1e-5)
    assert clipped["p1"].item() == pytest.approx(4.0, rel=1e-5)
