import subprocess
import sys

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from conftest import TINY_CLI, speech_like
from denoise.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_does_not_import_tensorflow():
    code = "import sys; from denoise.cli import main; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    for sub in ([], ["data-creation"], ["train"], ["predict"]):
        result = run(*sub, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_the_light_install_predicts_and_names_the_extra_for_the_rest(tmp_path, rng):
    """`pip install denoise-unet` without the 'train' extra: no TensorFlow, no Keras. Prediction with
    the shipped LiteRT exports works; what needs them says so in one line."""
    src = tmp_path / "talk.wav"
    sf.write(str(src), speech_like(rng, 1.0, 16000), 16000)
    code = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None\n"  # as if not installed
        "from click.testing import CliRunner; from denoise.cli import main\n"
        f"ok = CliRunner().invoke(main, ['predict', {str(src)!r}, {str(tmp_path / 'out.wav')!r}])\n"
        "assert ok.exit_code == 0, ok.output\n"
        f"no = CliRunner().invoke(main, ['predict', {str(src)!r}, {str(tmp_path / 'k.wav')!r}, '--runtime', 'keras'])\n"
        "assert no.exit_code == 1 and 'pip install -e \".[train]\" in the checkout' in no.output, no.output\n"
        "assert 'Traceback' not in no.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sf.info(str(tmp_path / "out.wav")).frames == 16000


def test_data_creation_train_predict_end_to_end(tmp_path, corpus, rng):
    voice, noise = corpus
    data, out = tmp_path / "data", tmp_path / "run"
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", data,
                 "--nb-samples", 20, "--shard-size", 8, "--snr-range", -5, 10, "--seed", 1, *TINY_CLI)
    assert result.exit_code == 0, result.output
    assert "Wrote 20 pairs in 3 shard(s)" in result.output and "Creating pairs" in result.output
    assert "voice files: 4 found, 4 used" in result.output
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", data,
                 "--nb-samples", 20, *TINY_CLI)  # shards exist: refused before any progress bar
    assert result.exit_code == 1 and "already exists" in result.output and "Creating pairs" not in result.output

    result = run("train", "--data-dir", data, "--out", out, "--epochs", 1, "--batch-size", 4, "--depth", 2,
                 "--base-filters", 4)
    assert result.exit_code == 0, result.output
    assert "Training on CPU" in result.output and "Done: 1 epoch on" in result.output
    result = run("train", "--data-dir", data, "--out", out, "--epochs", 2, "--resume")
    assert result.exit_code == 0, result.output
    assert "Resuming from" in result.output and "Done: 2 epochs" in result.output
    result = run("train", "--data-dir", data, "--out", out, "--epochs", 3, "--resume", "--base-filters", 8)
    assert result.exit_code == 1 and "--base-filters: for a new model; --resume goes on" in result.output

    src = tmp_path / "noisy.flac"
    sf.write(str(src), speech_like(rng, 0.7, 16000), 16000)
    result = run("predict", src, tmp_path / "clean.wav", "--weights", out / "best.keras")
    assert result.exit_code == 0, result.output
    info = sf.info(str(tmp_path / "clean.wav"))
    assert (info.samplerate, info.frames) == (16000, sf.info(str(src)).frames)
    result = run("predict", src, tmp_path / "fast.wav", "--weights", out / "best.keras", "--overlap", 0.25,
                 "--no-match-level", "--link-channels")
    assert result.exit_code == 0, result.output
    assert sf.info(str(tmp_path / "fast.wav")).frames == info.frames


def test_data_creation_errors(tmp_path, corpus):
    voice, noise = corpus
    result = run("data-creation", "--voice-dir", tmp_path / "missing", "--noise-dir", noise,
                 "--out-dir", tmp_path / "o", "--nb-samples", 2, *TINY_CLI)
    assert result.exit_code == 1 and "missing: folder not found" in result.output
    (tmp_path / "empty").mkdir()
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", tmp_path / "empty",
                 "--out-dir", tmp_path / "o", "--nb-samples", 2, *TINY_CLI)
    assert result.exit_code == 1 and "no usable noise audio found" in result.output
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", tmp_path / "o",
                 "--nb-samples", 2, "--hop-length", 300)
    assert result.exit_code == 1 and "hop_length=300 must be in 1..n_fft=255" in result.output
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", tmp_path / "o",
                 "--nb-samples", 0)
    assert result.exit_code == 2 and "nb-samples" in result.output
    result = run("data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", tmp_path / "o",
                 "--nb-samples", 2, "--snr-range", 10, 0)
    assert result.exit_code == 2 and "--snr-range" in result.output and "LOW 10 is above HIGH 0" in result.output
    # Options that need a switch, and a geometry no U-Net fits: said before the work, not ignored or left to train.
    common = ["data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", tmp_path / "o", "--nb-samples", 2]
    for extra, message in ((["--reverb-share", 0.3], "--reverb-share does nothing without --reverb"),
                           (["--pitch-range", 0, 3], "--pitch-range does nothing without --pitch-share"),
                           (["--n-fft", 512], "--n-fft 512 gives 257 bins")):
        result = run(*common, *extra)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()
    result = run(*common[:-2], "--nb-samples", 2, "--sample-rate", 8000, "--frame-length", 96, "--n-fft", 31,
                 "--hop-length", 8)
    assert result.exit_code == 0 and "fit a U-Net of at most 3 levels: train with --depth 3" in result.output


def test_train_errors(tmp_path, trained):
    result = run("train", "--data-dir", tmp_path, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "no dataset shards" in result.output
    result = run("train", "--data-dir", trained["data"], "--out", tmp_path / "o", "--init-weights",
                 tmp_path / "nope.keras")
    assert result.exit_code == 1 and "nope.keras: model file not found" in result.output


def test_predict_errors(tmp_path, trained, rng, monkeypatch):
    src = tmp_path / "in.wav"
    sf.write(str(src), speech_like(rng, 0.3, 16000), 16000)
    weights = ["--weights", trained["model"]]
    result = run("predict", tmp_path / "nope.wav", tmp_path / "o.wav", *weights)
    assert result.exit_code == 1 and "nope.wav: file not found" in result.output
    result = run("predict", src, tmp_path / "missing" / "o.wav", *weights)
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "missing").exists()
    (tmp_path / "text.wav").write_text("hello")
    result = run("predict", tmp_path / "text.wav", tmp_path / "o.wav", *weights)
    assert result.exit_code == 1 and "text.wav: cannot read audio" in result.output
    assert not (tmp_path / "o.wav").exists()
    monkeypatch.setenv("DENOISE_WEIGHTS", str(tmp_path))
    result = run("predict", src, tmp_path / "o.wav")
    assert result.exit_code == 1 and "no shipped model found" in result.output


def test_predict_keeps_silence_silent(tmp_path, trained):
    src = tmp_path / "silence.wav"
    sf.write(str(src), np.zeros(100, np.float32), 16000)
    result = run("predict", src, tmp_path / "o.wav", "--weights", trained["run"])
    assert result.exit_code == 0, result.output
    out, _ = sf.read(str(tmp_path / "o.wav"))
    assert out.shape == (100,) and np.all(out == 0)


def test_data_creation_with_esc50_classes(tmp_path, librispeech, esc50):
    common = ["data-creation", "--voice-dir", librispeech, "--out-dir", tmp_path / "data", "--nb-samples", 4,
              *TINY_CLI]
    result = run(*common, "--noise-dir", esc50 / "audio", "--noise-classes", "clock_tick, footsteps")
    assert result.exit_code == 0, result.output
    assert "noise files: 3 found" in result.output and "noise classes: clock_tick, footsteps" in result.output
    result = run(*common, "--noise-dir", esc50, "--noise-classes", "clock_tick,helicopter", "--overwrite")
    assert result.exit_code == 1
    assert "unknown class(es) helicopter; valid: clock_tick, dog, footsteps\n" in result.output


def test_cli_defaults_and_choices_are_the_librarys():
    """The CLI repeats the library's defaults and choices (importing them would slow --help): they must agree."""
    from denoise.enhance import HIGH_BAND_MODES, EnhanceOptions
    from denoise.mixing import SNR_WEIGHTINGS, MixOptions
    from denoise.model import LOSSES
    from denoise.model_io import KERAS_WEIGHTS, LITE_WEIGHTS, RUNTIMES
    from denoise.serve import DEFAULT_MAX_SECONDS, DEFAULT_MAX_UPLOAD_MB, Limits
    from denoise.settings import ModelSettings, Settings
    from denoise.train import TrainOptions

    def params(command):
        return {p.name: p for p in main.commands[command].params}

    def default(command, name):
        value = params(command)[name].default
        return tuple(value) if isinstance(value, list) else value

    enhance, mix, settings, train = EnhanceOptions(), MixOptions(nb_samples=1), Settings(), TrainOptions()
    expected = {
        ("predict", "strength"): enhance.strength, ("predict", "floor_db"): enhance.floor_db,
        ("predict", "overlap"): enhance.overlap, ("predict", "high_band"): enhance.high_band,
        ("predict", "match_level"): enhance.match_level, ("predict", "link_channels"): enhance.link_channels,
        ("serve", "max_upload_mb"): DEFAULT_MAX_UPLOAD_MB, ("serve", "max_seconds"): DEFAULT_MAX_SECONDS,
        ("serve", "max_jobs"): Limits().max_jobs,
        ("train", "epochs"): train.epochs, ("train", "batch_size"): train.batch_size,
        ("train", "validation_split"): train.validation_split, ("train", "seed"): train.seed,
        ("train", "base_filters"): ModelSettings().base_filters, ("train", "depth"): ModelSettings().depth,
        **{("data-creation", f): getattr(settings, f) for f in ("sample_rate", "frame_length", "n_fft", "hop_length")},
        ("data-creation", "snr_range"): mix.snr_db, ("data-creation", "snr_weighting"): mix.snr_weighting,
        ("data-creation", "max_noises"): mix.max_noises, ("data-creation", "clean_share"): mix.clean_share,
        ("data-creation", "noise_only_share"): mix.noise_only_share, ("data-creation", "seed"): mix.seed,
        ("data-creation", "pitch_share"): mix.pitch_share, ("data-creation", "pitch_range"): mix.pitch_semitones,
        ("data-creation", "lowpass_share"): mix.lowpass_share, ("data-creation", "lowpass_range"): mix.lowpass_hz,
        ("data-creation", "steady_share"): mix.steady_share, ("data-creation", "steady_slope"): mix.steady_slope,
        ("data-creation", "rt60_range"): mix.rt60, ("data-creation", "shard_size"): mix.shard_size,
    }
    assert {key: default(*key) for key in expected} == expected
    choices = {("predict", "high_band"): HIGH_BAND_MODES, ("predict", "runtime"): RUNTIMES,
               ("serve", "runtime"): RUNTIMES, ("export", "keras_weights"): KERAS_WEIGHTS,
               ("export", "lite_weights"): LITE_WEIGHTS, ("train", "loss"): LOSSES,
               ("data-creation", "snr_weighting"): SNR_WEIGHTINGS}
    assert {key: tuple(params(key[0])[key[1]].type.choices) for key in choices} == choices
    from denoise.audio import WRITABLE_EXTENSIONS
    out_formats = {"." + c for c in params("predict")["out_format"].type.choices}
    assert out_formats == set(WRITABLE_EXTENSIONS) - {".oga", ".aif", ".aifc"}  # every format, one name each


def test_data_creation_interrupted_says_what_it_left(tmp_path, corpus, monkeypatch):
    import denoise.mixing as mixing

    voice, noise = corpus
    args = ["data-creation", "--voice-dir", voice, "--noise-dir", noise, "--out-dir", tmp_path / "d", "--nb-samples", 4,
            "--shard-size", 2, *TINY_CLI]

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mixing, "scan_sources", stop)
    result = run(*args)
    assert result.exit_code == 1 and "interrupted while checking the inputs; nothing was written" in result.output
    monkeypatch.undo()
    made = mixing.make_shard
    monkeypatch.setattr(mixing, "make_shard", lambda index, *a: made(index, *a) if index == 0 else stop())
    result = run(*args)
    assert result.exit_code == 1 and "d holds an unfinished dataset, which training refuses" in result.output


def test_serve_without_its_extra_names_the_install(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "denoise.serve", raising=False)
    for name in ("anyio", "fastapi", "uvicorn"):
        monkeypatch.setitem(sys.modules, name, None)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1 and "needs the serve extra" in result.output
    assert 'is missing): pip install -e ".[serve]" in the checkout' in result.output
