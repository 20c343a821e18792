import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import speech_like, write, write_encoded
from denoise.cli import main
from denoise.errors import AudioError
from denoise.evaluate import (dnsmos, evaluate, evaluate_without_reference, format_table, pair_files, pesq_rate,
                              score, si_sdr, write_report)


def test_si_sdr_is_scale_invariant_and_matches_snr(rng):
    x = rng.standard_normal(16000)
    n = rng.standard_normal(16000)
    n *= np.linalg.norm(x) / np.linalg.norm(n) / 10 ** (10 / 20)
    assert si_sdr(x, x + n) == pytest.approx(10.0, abs=0.3)
    assert si_sdr(x, 0.3 * (x + n)) == pytest.approx(si_sdr(x, x + n))
    assert si_sdr(x, x) > 100
    assert np.isnan(si_sdr(x, np.zeros_like(x))) and np.isnan(si_sdr(np.zeros_like(x), x))  # not -inf: no ratio


def test_pesq_modes():
    assert pesq_rate(16000) == (16000, "wb") and pesq_rate(44100) == (16000, "wb")
    assert pesq_rate(8000) == (8000, "nb")
    with pytest.raises(AudioError, match="4000 Hz is below 8000 Hz"):
        pesq_rate(4000)


def test_scores_rank_clean_above_noisy(rng):
    clean = speech_like(rng, 3.0, 16000)
    noisy = clean + 0.05 * rng.standard_normal(clean.shape[0]).astype(np.float32)
    good, bad = score(clean, clean, 16000), score(clean, noisy, 16000)
    assert good["pesq"] > bad["pesq"] and good["stoi"] > bad["stoi"] and good["si_sdr"] > bad["si_sdr"]


@pytest.fixture
def evalset(tmp_path, rng):
    """clean/noisy/enhanced folders with two groups; the enhanced files are half-way to clean."""
    dirs = {k: tmp_path / k for k in ("clean", "noisy", "enhanced")}
    for group, rate in (("snr+00", 16000), ("snr+10", 16000)):
        for i in range(2):
            clean = speech_like(rng, 2.0, rate)
            noise = (0.03 if group == "snr+10" else 0.1) * rng.standard_normal(clean.shape[0]).astype(np.float32)
            write(dirs["clean"] / group / f"f{i}.wav", clean, rate)
            write(dirs["noisy"] / group / f"f{i}.wav", clean + noise, rate)
            write(dirs["enhanced"] / group / f"f{i}.flac", clean + 0.3 * noise, rate)
    return dirs


def test_evaluate_reports_per_file_per_group_and_overall(evalset, tmp_path):
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert len(report.rows) == 4 and not report.problems
    avg = report.averages()
    assert avg["pesq_delta"] > 0 and avg["si_sdr_delta"] == pytest.approx(20 * np.log10(1 / 0.3), abs=0.5)
    groups = report.groups()
    assert set(groups) == {"snr+00", "snr+10"}
    assert groups["snr+00"]["si_sdr_input"] < groups["snr+10"]["si_sdr_input"]
    table = format_table(report)
    assert "PESQ-WB" in table and "snr+10" in table
    csv_path, json_path = write_report(report, tmp_path / "report")
    assert len(csv_path.read_text().splitlines()) == 5
    summary = json.loads(json_path.read_text())
    assert summary["average"]["files"] == 4 and set(summary["groups"]) == {"snr+00", "snr+10"}


def test_one_file_has_no_interval_and_the_table_says_so(evalset):
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    report.rows = report.rows[:1]
    table = format_table(report)
    assert "n/a" in table and "nan" not in table


def test_missing_partners_lengths_and_rates_are_reported(evalset, rng):
    (evalset["noisy"] / "snr+00" / "f0.wav").unlink()
    write(evalset["noisy"] / "extra.wav", speech_like(rng, 1.0, 16000), 16000)
    pairs, problems = pair_files(evalset["clean"], evalset["noisy"])
    assert len(pairs) == 3
    assert any("no file matches clean" in p for p in problems)
    assert any("extra.wav: no clean reference" in p for p in problems)
    write(evalset["enhanced"] / "snr+10" / "f0.flac", np.zeros(100, np.float32), 16000)
    write(evalset["enhanced"] / "snr+10" / "f1.flac", np.zeros(32000, np.float32), 22050)
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert len(report.rows) == 1
    assert any("100 samples, the clean file f0.wav has 32000" in p for p in report.problems)
    assert any("sample rate 22050 Hz differs" in p for p in report.problems)


def test_unscorable_metrics_odd_names_and_duplicates_are_reported(evalset, rng):
    short = speech_like(rng, 0.05, 16000)  # too few frames for STOI (pystoi answers 1e-5), PESQ fails
    write(evalset["clean"] / "short [1].wav", short, 16000)
    write(evalset["noisy"] / "short [1].wav", short, 16000)
    write(evalset["enhanced"] / "short [1].flac", short, 16000)  # found despite the glob characters
    write(evalset["noisy"] / "snr+00" / "f1.flac", speech_like(rng, 2.0, 16000), 16000)  # f1.wav's twin
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert len(report.rows) == 5
    row = [r for r in report.rows if r["file"] == "short [1]"][0]
    assert np.isnan(row["stoi_input"]) and np.isnan(row["pesq_output"])
    assert any("short [1].wav: no PESQ and STOI (too short, or a silent reference, input or output)" in p
               for p in report.notes)
    assert any("f1.wav: same name as f1.flac; only f1.flac is scored" in p for p in report.problems)
    assert report.averages()["stoi_input"] > 0.5  # the unscorable file is left out, not averaged as 0


def test_a_silent_or_delayed_output_cannot_raise_the_averages(evalset, rng):
    """A denoiser that gives silence for its worst files must not score better for it: the file
    leaves input and output averages alike, and is a problem. A delay, which costs SI-SDR most of
    its range, is named."""
    before = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"]).averages()
    assert before["si_sdr_delta_ci95"] > 0 and before["si_sdr_files"] == 4
    enhanced = evalset["enhanced"] / "snr+00" / "f0.flac"
    data, rate = sf.read(str(enhanced), dtype="float32")
    write(enhanced, np.zeros_like(data), rate)
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    after = report.averages()
    assert any(p.endswith("f0.flac: silent (100 dB or more under f0.wav): left out of every average, "
                          "with its input") for p in report.problems), report.problems
    assert not any("f0.wav: no" in n for n in report.notes)  # said once, as the problem
    for metric in ("pesq", "stoi", "si_sdr"):
        assert after[f"{metric}_files"] == 3
        assert after[f"{metric}_delta"] == pytest.approx(
            np.mean([r[f"{metric}_output"] - r[f"{metric}_input"] for r in report.rows if r["file"] != "snr+00/f0"]))
    assert "(3)" in format_table(report)  # the files that have it, where fewer than the group's
    # Near silence (a denoiser that leaves -120 dB of noise) is silence too.
    write(enhanced, (1e-6 * rng.standard_normal(data.shape[0])).astype(np.float32), rate)
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert any("f0.flac: silent (100 dB or more" in p for p in report.problems), report.problems
    write(enhanced, np.concatenate([np.zeros(3, np.float32), data[:-3]]), rate)
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert any("f0.flac: lags its clean reference by 3 samples (SI-SDR" in n and "aligned); scored as it is" in n
               for n in report.notes), report.notes
    assert not any("f1.flac" in n for n in report.notes)


def test_delay_is_measured_on_a_bounded_stretch(rng):
    """An hour-long file costs no more than a short one (the loudest 20 s are correlated), and the
    lag found there is the file's, either way."""
    from denoise.evaluate import delay

    quiet_then_loud = np.concatenate([1e-4 * rng.standard_normal(16000 * 60), rng.standard_normal(16000 * 30)])
    for lag in (0, 2, -5, 700):
        assert delay(quiet_then_loud, np.roll(quiet_then_loud, lag), 16000) == lag
    assert delay(np.zeros(10), np.zeros(10), 16000) == 0 and delay(np.ones(1), np.ones(1), 8000) == 0


def test_exit_code_says_whether_every_file_was_scored(evalset, rng, tmp_path):
    """A metric missing for a scored file is a note (exit 0); a file left unscored is a problem (exit 1)."""
    short = speech_like(rng, 0.05, 16000)
    for side in ("clean", "noisy", "enhanced"):
        write(evalset[side] / "short.wav", short, 16000)
    args = ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir", str(evalset["noisy"]),
            "--enhanced-dir", str(evalset["enhanced"]), "--out", str(tmp_path / "rep")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "note: " in result.output and "problem" not in result.output, result.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["average"]["files"] == 5 and len(summary["notes"]) == 1 and not summary["problems"]
    # "a.b" is another recording: its output is never taken for "a"'s.
    for side in ("clean", "noisy"):
        write(evalset[side] / "a.wav", speech_like(rng, 1.0, 16000), 16000)
    write(evalset["enhanced"] / "a.b.wav", speech_like(rng, 1.0, 16000), 16000)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "a.wav: no denoised file for it in" in result.output, result.output


def test_a_report_folder_inside_the_noisy_folder_is_not_scored_again(evalset, trained):
    out = evalset["noisy"] / "report"
    for _ in range(2):
        result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir",
                                           str(evalset["noisy"]), "--weights", str(trained["model"]),
                                           "--out", str(out)])
        assert result.exit_code == 0 and "problem" not in result.output, result.output
    assert json.loads((out / "summary.json").read_text())["average"]["files"] == 4
    assert not (out / "enhanced" / "report").exists()


def test_cli_evaluate_with_enhanced_dir(evalset, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir",
                                       str(evalset["noisy"]), "--enhanced-dir", str(evalset["enhanced"]),
                                       "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "SI-SDR" in result.output and (tmp_path / "rep" / "summary.json").exists()


def test_cli_evaluate_denoises_with_a_model(evalset, tmp_path, trained):
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir",
                                       str(evalset["noisy"]), "--weights", str(trained["model"]),
                                       "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "rep" / "enhanced").rglob("*.wav"))) == 4
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["models"] == [str(trained["model"])]
    # A file that cannot be denoised is said once ("failed"), not again as "no denoised file".
    (evalset["noisy"] / "snr+00" / "f0.wav").write_bytes(b"not audio")
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir",
                                       str(evalset["noisy"]), "--weights", str(trained["model"]),
                                       "--out", str(tmp_path / "rep2")])
    assert result.exit_code == 1, result.output  # the others are scored, and a script learns one was not
    assert result.output.count("f0.wav") == 1 and "failed: " in result.output, result.output
    assert json.loads((tmp_path / "rep2" / "summary.json").read_text())["average"]["files"] == 3
    # A noisy file without a clean reference is said once, as such, and not denoised for nothing.
    (evalset["noisy"] / "snr+00" / "f0.wav").unlink()
    (evalset["clean"] / "snr+00" / "f0.wav").unlink()
    (evalset["noisy"] / "orphan.wav").write_bytes(b"not audio")
    write(evalset["noisy"] / "orphan2.wav", speech_like(np.random.default_rng(1), 1.0, 16000), 16000)
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(evalset["clean"]), "--noisy-dir",
                                       str(evalset["noisy"]), "--weights", str(trained["model"]),
                                       "--out", str(tmp_path / "rep3")])
    assert result.exit_code == 1, result.output
    assert result.output.count("orphan.wav") == 1 and "orphan.wav: no clean reference" in result.output, result.output
    assert result.output.count("orphan2.wav") == 1 and "failed: " not in result.output, result.output
    assert sorted(p.name for p in (tmp_path / "rep3" / "enhanced").rglob("*.wav")) == ["f0.wav", "f1.wav", "f1.wav"]


def test_evaluate_folder_is_the_command_as_a_function(evalset, tmp_path, trained):
    from denoise.evaluate import evaluate_folder

    stages = []

    def progress(stage, total):
        stages.append([stage, total, 0])
        return lambda n: stages[-1].__setitem__(2, stages[-1][2] + n)

    run = evaluate_folder(evalset["noisy"], tmp_path / "rep", evalset["clean"], weights=trained["model"],
                          progress=progress)
    assert run.complete and len(run.report.rows) == 4 and run.json_path == tmp_path / "rep" / "summary.json"
    assert stages == [["Denoising", 4, 4], ["Scoring", 4, 4]]
    assert json.loads(run.json_path.read_text())["models"] == [str(trained["model"])]


def test_cli_evaluate_scores_phone_recordings_without_reference(tmp_path, rng, trained):
    """Own recordings from a phone (AAC in .m4a): denoised into WAV and scored by DNSMOS."""
    clean = speech_like(rng, 2.0, 16000)
    write_encoded(tmp_path / "memos" / "memo.m4a", clean + 0.1 * rng.standard_normal(clean.shape[0]), 16000)
    result = CliRunner().invoke(main, ["evaluate", "--noisy-dir", str(tmp_path / "memos"), "--weights",
                                       str(trained["model"]), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "enhanced" / "memo.wav").exists()
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["average"]["files"] == 1 and not summary["problems"]
    # Scored against a clean WAV: the decoded m4a has the reference's exact length.
    write(tmp_path / "clean" / "memo.wav", clean, 16000)
    report = evaluate(tmp_path / "clean", tmp_path / "memos", tmp_path / "rep" / "enhanced")
    assert len(report.rows) == 1 and not report.problems
    # Two recordings of one name would share one output: the second is a problem line, never scored
    # against the first's output.
    write(tmp_path / "memos" / "memo.wav", clean, 16000)
    result = CliRunner().invoke(main, ["evaluate", "--noisy-dir", str(tmp_path / "memos"), "--weights",
                                       str(trained["model"]), "--out", str(tmp_path / "rep2")])
    assert result.exit_code == 1, result.output
    assert "memo.wav: its output" in result.output and "memo.wav: same name as memo.m4a" in result.output
    assert json.loads((tmp_path / "rep2" / "summary.json").read_text())["average"]["files"] == 1


def test_cli_evaluate_errors(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "n").mkdir()
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(tmp_path / "c"), "--noisy-dir",
                                       str(tmp_path / "n"), "--enhanced-dir", str(tmp_path / "n"),
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "n: no audio files found" in result.output
    write(tmp_path / "n" / "a.wav", np.zeros(8000, np.float32), 8000)
    write(tmp_path / "c" / "b.wav", np.zeros(8000, np.float32), 8000)
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(tmp_path / "c"), "--noisy-dir",
                                       str(tmp_path / "n"), "--out", str(tmp_path / "r"), "--weights", "nowhere"])
    assert result.exit_code == 1 and "n: no file has a clean partner in" in result.output  # before denoising
    # A model that cannot be loaded stops it, leaving no empty report or enhanced folder behind.
    write(tmp_path / "c" / "a.wav", np.zeros(8000, np.float32), 8000)
    (tmp_path / "bad.keras").write_text("junk")
    (tmp_path / "bad.json").write_text("{}")
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(tmp_path / "c"), "--noisy-dir",
                                       str(tmp_path / "n"), "--out", str(tmp_path / "r"),
                                       "--weights", str(tmp_path / "bad.keras")])
    assert result.exit_code == 1 and 'bad.json: no "settings" in it' in result.output
    assert not (tmp_path / "r").exists()


def test_dnsmos_ranks_clean_above_noisy_at_any_rate(rng):
    clean = speech_like(rng, 3.0, 16000)
    noisy = clean + 0.1 * rng.standard_normal(clean.shape[0]).astype(np.float32)
    good, bad = dnsmos(clean, 16000), dnsmos(noisy, 16000)
    assert good["dnsmos_bak"] > bad["dnsmos_bak"] + 1 and good["dnsmos_ovrl"] > bad["dnsmos_ovrl"]
    assert all(1.0 <= v <= 5.0 for v in (*good.values(), *bad.values()))
    # Resampled to DNSMOS's 16 kHz; a clipping signal is scaled down instead of refused.
    assert dnsmos(3 * clean, 16000)["dnsmos_bak"] == pytest.approx(dnsmos(clean, 16000)["dnsmos_bak"], abs=0.3)
    # An offset nobody hears does not lower the score (DNSMOS alone gives SIG 2.3 -> 1.1 at +0.2).
    offset = dnsmos(clean + np.float32(0.2), 16000)
    assert offset == pytest.approx(good, abs=0.02)
    # Digital silence stays zero (DNSMOS scores it far from a tiny constant); the offset is taken from the rest.
    gapped = np.concatenate([clean, np.zeros(16000, np.float32), clean])
    assert dnsmos(gapped + np.float32(0.2) * (gapped != 0), 16000) == pytest.approx(dnsmos(gapped, 16000), abs=0.02)


def test_cli_evaluate_without_clean_references_uses_dnsmos(evalset, tmp_path, rng):
    write(evalset["noisy"] / "short.wav", np.zeros(10, np.float32), 4000)
    write(evalset["enhanced"] / "short.wav", np.zeros(10, np.float32), 4000)
    write(evalset["noisy"] / "lonely.wav", np.zeros(8000, np.float32), 8000)
    # A silent output (DNSMOS scores silence above many inputs) and one that is no copy of its input.
    for name, output in (("muted", np.zeros(16000, np.float32)), ("cut", speech_like(rng, 0.5, 16000))):
        write(evalset["noisy"] / f"{name}.wav", speech_like(rng, 1.0, 16000), 16000)
        write(evalset["enhanced"] / f"{name}.wav", output, 16000)
    report = evaluate_without_reference(evalset["noisy"], evalset["enhanced"])
    assert any(p.endswith("muted.wav: silent (100 dB or more under its input)") for p in report.problems)
    assert any(p.endswith("cut.wav: 0.50 s long, its input 1.00 s (not its denoised copy?)") for p in report.problems)
    assert len(report.rows) == 4 and any("4000 Hz is below 8000 Hz" in p for p in report.problems)
    assert any("lonely.wav: no denoised file for it in" in p for p in report.problems)
    assert report.averages()["dnsmos_bak_delta"] > 0
    result = CliRunner().invoke(main, ["evaluate", "--noisy-dir", str(evalset["noisy"]), "--enhanced-dir",
                                       str(evalset["enhanced"]), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output  # short.wav and lonely.wav could not be scored
    assert "DNSMOS OVRL" in result.output and "PESQ" not in result.output
    header = (tmp_path / "rep" / "per_file.csv").read_text().splitlines()[0]
    assert header.startswith("file,group,sample_rate,dnsmos_sig_input,dnsmos_sig_output")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["clean_dir"] is None and summary["average"]["files"] == 4


def test_mixed_rates_are_labelled_per_group_and_problems_name_the_file(evalset, rng):
    for i in range(2):  # an 8 kHz group beside the two 16 kHz ones: scored narrow-band
        clean = speech_like(rng, 2.0, 8000)
        noisy = clean + 0.05 * rng.standard_normal(clean.shape[0]).astype(np.float32)
        write(evalset["clean"] / "phone" / f"p{i}.wav", clean, 8000)
        write(evalset["noisy"] / "phone" / f"p{i}.wav", noisy, 8000)
        write(evalset["enhanced"] / "phone" / f"p{i}.wav", noisy, 8000)
    write(evalset["clean"] / "low" / "l.wav", np.zeros(4000, np.float32), 4000)
    write(evalset["noisy"] / "low" / "l.wav", np.zeros(4000, np.float32), 4000)
    write(evalset["clean"] / "gone" / "g.wav", speech_like(rng, 1.0, 16000), 16000)
    write(evalset["noisy"] / "gone" / "g.wav", speech_like(rng, 1.0, 16000), 16000)
    report = evaluate(evalset["clean"], evalset["noisy"], evalset["enhanced"])
    assert any(p.endswith("l.wav: sample rate 4000 Hz is below 8000 Hz, which PESQ does not support")
               for p in report.problems), report.problems
    assert any("g.wav: no denoised file for it in" in p for p in report.problems), report.problems
    table = format_table(report).splitlines()
    labels = {line.split()[0]: [w for w in line.split() if "PESQ" in w][0] for line in table if "PESQ" in line}
    # PESQ-WB and PESQ-NB are different scales: averaged apart where a group holds both.
    assert labels == {"all": "PESQ-WB", "PESQ-NB": "PESQ-NB", "phone": "PESQ-NB", "snr+00": "PESQ-WB",
                      "snr+10": "PESQ-WB"}, labels
    avg = report.averages()
    assert "pesq_output" not in avg and (avg["pesq_wb_files"], avg["pesq_nb_files"]) == (4, 2)
    assert (avg["pesq_mode"], report.groups()["phone"]["pesq_mode"]) == ("wb+nb", "nb")
    assert avg["pesq_nb_delta"] == pytest.approx(0, abs=1e-6)  # the phone files' output is their input


def test_the_eval_extra_holds_what_speechmos_imports_without_declaring_it():
    """speechmos imports librosa, onnxruntime and requests but does not require them; the test
    extra has them all, so only the eval extra's own list can show one missing."""
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).parents[1] / "setup.cfg")
    names = {line.split(">")[0].split("=")[0].split(";")[0].strip()
             for line in cfg["options.extras_require"]["eval"].splitlines() if line.strip()}
    assert {"speechmos", "librosa", "onnxruntime", "requests", "pesq", "pystoi"} <= names
