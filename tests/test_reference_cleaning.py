"""benchmarks/reference_cleaning.py: its table cells (means, paired intervals, files left out)."""

import numpy as np
import pytest
from conftest import benchmark_script


def test_a_cell_is_the_mean_or_the_paired_difference_with_its_interval():
    rc = benchmark_script("reference_cleaning")
    assert rc.cell([1.0, 2.0, 3.0], None, 3) == "2.000"
    base, cand = [3.0, 3.1, 3.2, 3.3], [3.1, 3.1, 3.4, 3.4]
    diffs = np.subtract(cand, base)
    half = 1.96 * diffs.std(ddof=1) / 2
    assert rc.cell(cand, base, 3) == f"{np.mean(cand):.3f} (+{diffs.mean():.3f} ± {half:.3f})"


def test_a_cell_leaves_out_files_without_a_score_and_says_how_many():
    rc = benchmark_script("reference_cleaning")
    assert rc.cell([1.0, float("nan"), 3.0], None, 1) == "2.0 (2 of 3 files)"
    cell = rc.cell([3.0, float("nan"), 3.5, 3.2], [3.0, 3.0, float("nan"), 3.1], 3)
    assert cell.startswith("3.100 (+0.050 ± ") and cell.endswith(", 2 of 4 files)")
    assert rc.cell([float("nan")] * 3, None, 3) == "n/a (0 of 3 files)"
    assert rc.cell([1.0, float("nan")], [1.0, 1.0], 3) == "n/a"  # fewer than two pairs: no interval


def test_a_folder_without_audio_stops_with_its_name(tmp_path):
    rc = benchmark_script("reference_cleaning")
    (tmp_path / "16k" / "clean").mkdir(parents=True)
    with pytest.raises(SystemExit, match="clean: no audio files"):
        rc.main(["--valset", str(tmp_path), "--part", "16k"])
