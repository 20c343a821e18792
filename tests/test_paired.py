"""benchmarks/paired.py: file-by-file differences between two systems' quality.py scores."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_script


def write_scores(folder: Path, pesq: list[float], extra_file: bool = False) -> None:
    rows = [{"file": f"snr+00/f{i}", "group": "snr+00", "pesq_output": p, "stoi_output": 0.9,
             "si_sdr_output": 10.0} for i, p in enumerate(pesq)]
    if extra_file:  # scored by this system only: left out of the pairs
        rows.append({"file": "snr+00/only-here", "group": "snr+00", "pesq_output": 99.0})
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps({"stamp": {}, "rows": rows}))


def test_mean_interval_and_counts_of_the_paired_differences(tmp_path):
    paired = benchmark_script("paired")
    base = [2.0, 2.5, 3.0, 1.5]
    cand = [2.1, 2.7, 2.9, 1.8]
    write_scores(tmp_path / "16k" / "denoise__shipped_", base)
    write_scores(tmp_path / "16k" / "denoise__new_", cand, extra_file=True)
    b = paired.load(tmp_path, "16k", "denoise (shipped)")  # found by its label's folder name
    c = paired.load(tmp_path, "16k", "denoise__new_")  # or by the folder itself
    mean, half, better, worse, n = paired.paired(b, c, "pesq")
    diffs = np.array(cand) - np.array(base)
    assert n == 4 and (better, worse) == (3, 1)
    assert mean == pytest.approx(diffs.mean())
    assert half == pytest.approx(1.96 * diffs.std(ddof=1) / 2)
    assert paired.paired(b, c, "ovrl") is None  # a metric neither scored (DNSMOS skipped)


def test_a_label_finds_quality_pys_folder_whatever_its_characters(tmp_path):
    paired = benchmark_script("paired")
    write_scores(tmp_path / "8k" / "denoise__w8_s0_85_", [2.0, 2.1])  # as quality.py names it
    assert len(paired.load(tmp_path, "8k", "denoise (w8-s0.85)")) == 2


def test_the_table_names_each_system_and_a_missing_one_stops_with_the_folder(tmp_path, capsys):
    paired = benchmark_script("paired")
    write_scores(tmp_path / "16k" / "base", [2.0, 2.0, 2.0])
    write_scores(tmp_path / "16k" / "cand", [2.5, 2.5, 2.5])
    paired.main(["--work", str(tmp_path), "--parts", "16k", "--baseline", "base", "--systems", "cand"])
    out = capsys.readouterr().out
    assert "| cand | +0.500 ± 0.000 (3/0) |" in out and "minus base" in out
    with pytest.raises(SystemExit, match="no scores.json for 'gone'"):
        paired.main(["--work", str(tmp_path), "--parts", "16k", "--baseline", "base", "--systems", "gone"])


def test_by_band_and_class_add_a_table_per_snr_band_in_numeric_order_and_per_class(tmp_path, capsys):
    paired = benchmark_script("paired")
    for name, values in (("base", [2.0, 2.0, 3.0, 3.0]), ("cand", [2.5, 2.5, 2.0, 2.0])):
        rows = [{"file": f"{g}/{'dog' if i % 2 else 'rain'}-1-{i}", "group": g, "pesq_output": v}
                for i, (g, v) in enumerate(zip(["snr+00", "snr+00", "snr-05", "snr-05"], values))]
        (tmp_path / "16k" / name).mkdir(parents=True)
        (tmp_path / "16k" / name / "scores.json").write_text(json.dumps({"stamp": {}, "rows": rows}))
    paired.main(["--work", str(tmp_path), "--parts", "16k", "--baseline", "base", "--systems", "cand",
                 "--by", "band", "--by", "class"])
    out = capsys.readouterr().out
    titles = [line for line in out.splitlines() if line.startswith("## ")]
    assert [t.split(":")[0] for t in titles] == ["## 16k", "## 16k, snr-05", "## 16k, snr+00", "## 16k, dog",
                                                 "## 16k, rain"]
    tables = out.split("## ")[1:]
    assert "| cand | -0.250 ± " in tables[0]  # all four files
    assert "| cand | -1.000 ± 0.000 (0/2) |" in tables[1] and "| cand | +0.500 ± 0.000 (2/0) |" in tables[2]
    assert "| cand | -0.250 ± 1.470 (1/1) |" in tables[3]  # dog: files 1 and 3, +0.5 and -1.0
