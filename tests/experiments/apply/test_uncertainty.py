"""Error bars on cases whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.apply.uncertainty import field_fractions, number_density, t_interval, within_image_error


def test_t_interval_is_students_over_the_values():
    interval = t_interval([0.20, 0.25, 0.22, 0.27, 0.21])
    std = np.std([0.20, 0.25, 0.22, 0.27, 0.21], ddof=1)
    assert interval["mean"] == pytest.approx(0.23) and interval["std"] == pytest.approx(std)
    assert interval["half_width"] == pytest.approx(2.7764451 * std / np.sqrt(5))  # t(0.975, 4) from tables
    assert interval["ci_low"] == pytest.approx(0.23 - interval["half_width"])
    single = t_interval([0.3])
    assert single["mean"] == 0.3 and single["half_width"] is None and single["ci_low"] is None


def test_within_image_error_over_fields_of_known_fractions():
    """16 fields whose fractions are set exactly: the standard error is their std / sqrt(16)."""
    fractions = np.arange(16) / 32  # 0, 1/32, ..., 15/32 of each 16 x 16 field
    mask = np.zeros((64, 64), np.int64)
    for field, fraction in enumerate(fractions):
        r, c = divmod(field, 4)
        tile = np.zeros(256, np.int64)
        tile[: int(fraction * 256)] = 1
        mask[16 * r : 16 * r + 16, 16 * c : 16 * c + 16] = tile.reshape(16, 16)
    assert np.allclose(np.sort(field_fractions(mask, 2, fields=4)[:, 1]), fractions)
    error = within_image_error(mask, ["matrix", "phase"], fields=4)["phase"]
    assert error["fields"] == 16
    assert error["standard_error"] == pytest.approx(np.std(fractions, ddof=1) / 4)
    assert error["relative_accuracy"] == pytest.approx(error["half_width"] / fractions.mean())
    uniform = within_image_error(np.ones((64, 64), np.int64), ["matrix", "phase"])["phase"]
    assert uniform["standard_error"] == 0.0


def test_fields_of_an_image_that_does_not_divide_evenly():
    fractions = field_fractions(np.ones((10, 7), np.int64), 2, fields=4)
    assert fractions.shape == (16, 2) and np.all(fractions[:, 1] == 1.0)


def test_number_density_counts_cut_particles_half():
    assert number_density(8, 4, 1000.0) == pytest.approx(10 / 1000)
    assert np.isnan(number_density(1, 0, 0.0))
