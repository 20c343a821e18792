"""The ``denoise`` command: parses options, calls one library function, reports.

Heavy modules (TensorFlow, PyAV, matplotlib) are imported inside the commands so ``denoise --help`` is instant.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from . import __version__
from .errors import DenoiseError, UsageProblem, install_hint

EXISTING_DIR = click.Path(file_okay=False, path_type=Path)
SKIPPED_SHOWN = 10  # skipped outputs listed one by one; past that, a count
LONG_FILE_SECONDS = 60.0  # one recording at least this long gets a progress bar over its seconds
ANY_PATH = click.Path(path_type=Path)
WEIGHTS_HELP = ("Model file (.keras, or its .tflite export alone, each with its .json) or training folder. "
                "Default: the shipped 8 kHz model for audio at 8 kHz or below, the 16 kHz model otherwise.")


def _fail(exc: DenoiseError) -> None:
    raise click.ClickException(str(exc))


TRAINING_STACK = {"tensorflow", "keras"}


class _Commands(click.Group):
    """The command group; a command that needs TensorFlow where only the light prediction install is
    present says so in one line, with the cure, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in TRAINING_STACK:
                raise
            raise click.ClickException(
                f"this needs TensorFlow and Keras ({exc.name} is not installed; training, export, the Keras "
                "runtime and .keras models without their .tflite use them): " + install_hint("train")
            ) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="denoise")
def main() -> None:
    """Remove environmental noise from speech recordings."""


@main.command("data-creation")
@click.option("--voice-dir", type=EXISTING_DIR, required=True, help="Folder of clean speech (searched recursively).")
@click.option("--noise-dir", type=EXISTING_DIR, required=True, help="Folder of noise recordings (searched recursively).")
@click.option("--noise-classes", metavar="NAME,NAME,...",
              help="Use only these ESC-50 classes (e.g. clock_tick,footsteps), read from meta/esc50.csv "
                   "in --noise-dir, its parent or a sub-folder.")
@click.option("--out-dir", type=EXISTING_DIR, required=True, help="Where shards, settings and samples are written.")
@click.option("--nb-samples", type=click.IntRange(min=1), required=True, help="Number of noisy/clean pairs to create.")
@click.option("--sample-rate", type=click.IntRange(1000, 192000), default=16000, show_default=True,
              help="Rate the audio is resampled to (8000 reproduces the original project).")
@click.option("--frame-length", type=click.IntRange(min=16), default=8064, show_default=True,
              help="Samples per training example (128 hops of 63).")
@click.option("--n-fft", type=click.IntRange(min=16), default=255, show_default=True, help="FFT size (255 gives 128 bins).")
@click.option("--hop-length", type=click.IntRange(min=1), default=63, show_default=True, help="STFT hop in samples.")
@click.option("--snr-range", type=(float, float), default=(-5.0, 20.0), show_default=True, metavar="LOW HIGH",
              help="SNR in dB drawn uniformly for each pair.")
@click.option("--snr-weighting", type=click.Choice(["uniform", "hard"]), default="uniform", show_default=True,
              help="hard: draw low SNRs more often (density falling linearly to zero at the top of the range).")
@click.option("--max-noises", type=click.IntRange(1, 5), default=1, show_default=True,
              help="Mix 1 to this many noise recordings into each pair (the extra ones 0-10 dB quieter).")
@click.option("--clean-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs with no noise added, so the model learns to leave clean speech alone.")
@click.option("--noise-only-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs with noise alone, no speech (as in a pause), so the model learns to "
                   "remove noise where nobody speaks.")
@click.option("--pitch-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs whose speech is played faster or slower (pitch and formants move "
                   "together), so high voices such as children's are not taken for noise.")
@click.option("--pitch-range", type=(float, float), default=(-2.0, 7.0), show_default=True, metavar="LOW HIGH",
              help="With --pitch-share: the shift in semitones, drawn uniformly for each such pair.")
@click.option("--lowpass-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs low-passed whole (speech and noise), as recordings made at a lower rate "
                   "or through a codec, so the model also denoises band-limited speech.")
@click.option("--lowpass-range", type=(float, float), default=(3000.0, 7500.0), show_default=True,
              metavar="LOW HIGH", help="With --lowpass-share: the cut-off in Hz, drawn uniformly for each such pair.")
@click.option("--steady-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs given steady noise too (room tone, fans, air conditioning: white to "
                   "brown; half of them with mains hum), so the model removes it as well.")
@click.option("--steady-slope", type=(float, float), default=(-6.0, 3.0), show_default=True, metavar="LOW HIGH",
              help="With --steady-share: the noise's slope in dB per octave (0 white, -3 pink, -6 brown), "
                   "drawn uniformly for each such pair.")
@click.option("--reverb", is_flag=True,
              help="Add room echo: convolve the speech of some pairs with simulated room impulse responses; "
                   "the target stays the dry speech, so the model learns to remove echo too.")
@click.option("--reverb-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="With --reverb: share of pairs made reverberant.")
@click.option("--rt60-range", type=(float, float), default=(0.2, 1.0), show_default=True, metavar="LOW HIGH",
              help="With --reverb: reverberation time in seconds drawn uniformly for each room.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same inputs and seed give identical files.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Pairs per shard file.")
@click.option("--overwrite", is_flag=True, help="Replace shards already in --out-dir.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes creating shards in parallel (the output is the same for any number).")
@click.option("--num-shards", type=click.IntRange(min=1), default=1, show_default=True,
              help="Split the dataset into this many parts, created by independent jobs.")
@click.option("--shard-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which part this job creates (0 .. --num-shards - 1).")
def data_creation(voice_dir, noise_dir, noise_classes, out_dir, nb_samples, sample_rate, frame_length, n_fft,
                  hop_length, snr_range, snr_weighting, max_noises, clean_share, noise_only_share, pitch_share,
                  pitch_range, lowpass_share, lowpass_range, steady_share, steady_slope, reverb, reverb_share, rt60_range, seed, shard_size,
                  overwrite, workers, num_shards, shard_index) -> None:
    """Blend clean speech with noise at random SNRs into spectrogram shards for training."""
    ctx = click.get_current_context()
    for option, needs, given in (("reverb_share", "--reverb", reverb), ("rt60_range", "--reverb", reverb),
                                 ("pitch_range", "--pitch-share", pitch_share > 0),
                                 ("lowpass_range", "--lowpass-share", lowpass_share > 0),
                                 ("steady_slope", "--steady-share", steady_share > 0)):
        if ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE and not given:
            raise click.UsageError(f"--{option.replace('_', '-')} does nothing without {needs}")
    for option in ("snr_range", "pitch_range", "lowpass_range", "steady_slope", "rt60_range"):
        low, high = ctx.params[option]
        if low > high:
            raise click.BadParameter(f"LOW {low:g} is above HIGH {high:g}", param_hint=f"--{option.replace('_', '-')}")
    from tqdm import tqdm

    from .mixing import MixOptions, create_dataset
    from .settings import ModelSettings, Settings, deepest_unet
    from .sources import parse_classes

    bars: list = []  # the progress bar appears once every input has been checked, when the work starts
    try:
        settings = Settings(sample_rate=sample_rate, frame_length=frame_length, n_fft=n_fft,
                            hop_length=hop_length).validate()
        depth = deepest_unet(settings)
        if depth < 2:
            raise click.UsageError(
                f"--n-fft {n_fft} gives {settings.n_bins} bins and --frame-length/--hop-length {settings.n_frames} "
                "frames; a U-Net halves both at each level, so both must be even at least (n_fft odd: 255, 511)")
        if depth < ModelSettings().depth:
            click.echo(f"Note: {settings.n_bins}x{settings.n_frames} spectrograms fit a U-Net of at most {depth} levels: "
                       f"train with --depth {depth}", err=True)
        options = MixOptions(nb_samples=nb_samples, snr_db=snr_range, seed=seed, shard_size=shard_size,
                             noise_classes=parse_classes(noise_classes or ""),
                             reverb_share=reverb_share if reverb else 0.0, rt60=rt60_range,
                             snr_weighting=snr_weighting, max_noises=max_noises,
                             clean_share=clean_share, noise_only_share=noise_only_share, pitch_share=pitch_share,
                             pitch_semitones=pitch_range, lowpass_share=lowpass_share, lowpass_hz=lowpass_range,
                             steady_share=steady_share, steady_slope=steady_slope)
        start = time.perf_counter()

        def progress(pairs: int) -> None:
            if not bars:
                bars.append(tqdm(total=None if num_shards > 1 else nb_samples, unit="pair", desc="Creating pairs"))
            bars[0].update(pairs)

        try:
            report = create_dataset(voice_dir, noise_dir, out_dir, settings, options, overwrite, progress,
                                    workers=workers, num_shards=num_shards, shard_index=shard_index)
        finally:
            for bar in bars:
                bar.close()
    except DenoiseError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        if not bars:
            raise click.ClickException("interrupted while checking the inputs; nothing was written") from None
        raise click.ClickException(f"interrupted: {out_dir} holds an unfinished dataset, which training refuses; "
                                   "run the same command with --overwrite to make it again") from None
    elapsed = time.perf_counter() - start
    click.echo(f"Wrote {report.pairs} pairs in {len(report.shards)} shard(s) to {out_dir} "
               f"({report.pairs / elapsed:.0f} pairs/s)")
    for kind in ("voice", "noise"):
        click.echo(f"  {kind} files: {report.found[kind]} found, {len(report.used[kind])} used")
    if options.noise_classes:
        click.echo(f"  noise classes: {', '.join(options.noise_classes)}")
    if report.skipped:
        click.echo(f"  {len(report.skipped)} file(s) skipped:")
        for path, reason in sorted(report.skipped.items()):
            click.echo(f"    {path}: {reason}")


@main.command()
@click.option("--data-dir", type=EXISTING_DIR, required=True, help="Folder made by 'denoise data-creation'.")
@click.option("--out", type=EXISTING_DIR, required=True, help="Folder for models, log and plot.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Total epochs (counting resumed ones).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Adam's learning rate [default: 1e-4; with --resume, the checkpoint's].")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Share of pairs held out for validation.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--init-weights", type=click.Path(path_type=Path), help="Start from this model (fine-tuning).")
@click.option("--base-filters", type=click.IntRange(min=1), default=16, show_default=True,
              help="Filters of the first level of a new model.")
@click.option("--widen-to", type=click.IntRange(min=2),
              help="With --init-weights: first widen that model to this many first-level filters; it "
                   "computes the same at first and training grows the new filters.")
@click.option("--depth", type=click.IntRange(2, 8), default=5, show_default=True, help="U-Net levels (5: 10 encoder convolutions).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True),
              help="Dropout rate on the two deepest levels [default: 0.5, as in the original method; "
                   "with --init-weights, that model's own].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mixed-precision", is_flag=True, help="float16 compute on GPUs that support it.")
@click.option("--loss", type=click.Choice(["noise", "noise+clean"]),
              help="noise: Huber on the noise target (the original method); noise+clean: also score "
                   "the clean estimate prediction makes, weighting loud speech bins more "
                   "[default: noise; with --resume, the checkpoint's].")
def train(data_dir, out, epochs, batch_size, learning_rate, validation_split, resume, init_weights,
          base_filters, widen_to, depth, dropout, seed, mixed_precision, loss) -> None:
    """Train the U-Net to predict the noise in noisy spectrograms."""
    from click.core import ParameterSource

    from .settings import ModelSettings, read_json
    from .train import STATE, TrainOptions, train as run_training

    given = [f"--{name.replace('_', '-')}" for name in ("base_filters", "depth", "dropout")
             if click.get_current_context().get_parameter_source(name) == ParameterSource.COMMANDLINE]
    if resume and given:
        raise click.ClickException(f"{', '.join(given)}: for a new model; --resume goes on with the checkpoint's")
    if init_weights and set(given) - {"--dropout"}:
        raise click.ClickException(f"{', '.join(sorted(set(given) - {'--dropout'}))}: for a new model; "
                                   "--init-weights takes that model's size (--widen-to makes it wider)")
    options = TrainOptions(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                           validation_split=validation_split, seed=seed, mixed_precision=mixed_precision,
                           loss=loss)
    try:
        new_model = ModelSettings(base_filters=base_filters, depth=depth,
                                  **({} if dropout is None else {"dropout": dropout}))
        result = run_training(data_dir, out, options, new_model, resume=resume, init_weights=init_weights,
                              widen_to=widen_to, dropout=dropout if init_weights else None, log=click.echo)
    except DenoiseError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo()  # end Keras's progress bar line
        try:
            saved = f"{out / 'last.keras'} holds epoch {read_json(out / STATE)['epoch']}"
        except Exception:
            raise click.ClickException("interrupted before the first epoch was saved; nothing to resume") from None
        raise click.ClickException(f"interrupted: {saved}; go on with the same command and --resume") from None
    click.echo(f"Done: {result.epochs_done} epoch{'s' if result.epochs_done != 1 else ''} on {result.device}; best validation loss "
               f"{result.best_val_loss:.5f}; best model {result.best_path}; last checkpoint {result.last_path}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=ANY_PATH, metavar="IN OUT | INPUTS... --out-dir DIR")
@click.option("--out-dir", type=EXISTING_DIR, help="Write each input here (folders keep their relative paths).")
@click.option("--weights", type=ANY_PATH, help=WEIGHTS_HELP)
@click.option("--out-format", type=click.Choice(["wav", "flac", "ogg", "opus", "mp3", "m4a", "aiff", "caf", "w64",
                                                "mp4", "mov", "mkv", "webm"]),
              help="With --out-dir: write every output in this format [default: each input's own; WAV for "
                   "formats that can only be read, such as 3gp, mka or wma]. A video written as mp4, mov, mkv "
                   "or webm keeps its picture.")
@click.option("--overwrite", is_flag=True, help="Replace outputs that already exist (never the input itself).")
@click.option("--mono", is_flag=True, help="Downmix to one channel instead of denoising each channel.")
@click.option("--plot", is_flag=True, help="Also write OUTPUT.png: noisy and denoised spectrograms.")
@click.option("--high-band", type=click.Choice(["gain", "keep", "drop"]), default="gain", show_default=True,
              help="Above the model's band (inputs sampled higher than the model): apply the model's "
                   "top-band gain, keep the band untouched, or drop it.")
@click.option("--runtime", type=click.Choice(["auto", "lite", "keras"]), default="auto", show_default=True,
              help="auto: the LiteRT export beside the model when present (fast, no TensorFlow), else Keras.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of the predicted noise to remove (0: none, 1: all).")
@click.option("--floor-db", type=click.FloatRange(max=0), default=-40.0, show_default=True,
              help="Never attenuate any part of the spectrum by more than this (dB).")
@click.option("--overlap", type=click.FloatRange(0, 0.75), default=0.25, show_default=True,
              help="Share of each 128-frame block predicted again by the next block and cross-faded: "
                   "more is slower (0.5 predicts every frame twice), 0 is fastest but leaves seams "
                   "(see benchmarks/quality_speed_options.txt).")
@click.option("--match-level/--no-match-level", default=True, show_default=True,
              help="Judge a recording quieter than -35 dBFS or louder than -20 dBFS (RMS) as if it were "
                   "at the nearest end of that range, where the models were trained; the output keeps "
                   "the input's level.")
@click.option("--link-channels/--separate-channels", default=False, show_default=True,
              help="Apply one gain to every channel, so a voice recorded in stereo (one scene, like noise "
                   "in each channel) keeps its place between the speakers; not for a microphone per "
                   "person (see docs/predict.md).")
def predict(paths, out_dir, out_format, weights, overwrite, mono, plot, high_band, runtime, strength, floor_db, overlap,
            match_level, link_channels) -> None:
    """Denoise recordings: 'denoise predict IN OUT', or many files, folders and globs with --out-dir.

    Outputs keep the input's length, sample rate, channels and (where the format allows) sample
    format; the format follows the output's extension (wav, flac, ogg, opus, mp3, m4a, aiff, caf,
    w64; mp4, mov, mkv or webm: a video keeps its picture, copied unchanged). Inputs may also be
    aac, 3gp, mka or wma (their first sound track).
    """
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # prediction runs on the CPU
    from tqdm import tqdm

    from .enhance import enhance_batch, plan_outputs
    from .model_io import ModelChooser

    try:
        format_notes: dict[Path, str] = {}
        jobs, problems = plan_outputs(list(paths), out_dir, out_format, format_notes, mono=mono)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
    except UsageProblem as exc:
        raise click.UsageError(str(exc)) from None
    except DenoiseError as exc:
        _fail(exc)
    except OSError as exc:
        raise click.ClickException(f"{out_dir}: cannot create output folder ({exc.strerror})")
    chooser = ModelChooser(weights, runtime)
    seconds_bar: list = []  # one long file: a bar per stage over its seconds of audio, once it is worth it
    shown: dict[str, str] = {}  # the stage of the last bar (tqdm's own desc is unset when TQDM_DISABLE is)

    def file_progress(done: float, total: float, stage: str) -> None:
        if seconds_bar and shown.get("stage") != stage:
            seconds_bar[-1].close()
        if shown.get("stage") != stage and max(done, total) >= LONG_FILE_SECONDS:
            # Decoding does not know the length yet: a count of seconds without a total.
            seconds_bar.append(tqdm(total=round(total, 1) or None, unit="s", desc=stage))
            shown["stage"] = stage
        if seconds_bar and shown.get("stage") == stage:
            seconds_bar[-1].update(round(done, 1) - seconds_bar[-1].n)

    try:
        with tqdm(total=len(jobs), unit="file", desc="Denoising", disable=len(jobs) < 2) as bar:
            report = enhance_batch(jobs, chooser.for_rate, overwrite=overwrite, mono=mono, plot=plot,
                                   high_band=high_band, strength=strength, floor_db=floor_db, overlap=overlap,
                                   match_level=match_level, link_channels=link_channels,
                                   make_dirs=out_dir is not None, progress=bar.update,
                                   file_progress=file_progress if len(jobs) == 1 else None)
    except DenoiseError as exc:  # the model or the options: every file would fail alike
        _fail(exc)
    finally:
        for one in seconds_bar:
            one.close()
    report.failed = problems + report.failed
    if out_dir is None:  # one file: its problem is the command's error
        if report.skipped:
            raise click.ClickException(report.skipped[0])
        if report.failed:
            raise click.ClickException(report.failed[0])
    for result in report.done:
        if result.input in format_notes:
            click.echo(f"  note: {format_notes[result.input]}", err=True)
        if result.truncated:
            click.echo(f"  note: {result.truncated}; denoised what it holds", err=True)
        if round(result.scaled_db, 2) < 0:  # under 0.005 dB is not worth a line
            click.echo(f"  note: {result.output}: scaled by {result.scaled_db:.2f} dB to avoid clipping", err=True)
        if result.plot_skipped:
            click.echo(f"  note: {result.plot_skipped}", err=True)
    if out_dir is None:
        r = report.done[0]
        png = f" and {r.output.with_suffix('.png')}" if plot and not r.plot_skipped else ""
        click.echo(f"Wrote {r.output}{png} ({r.seconds:.1f} s at {r.sample_rate} Hz; denoised in "
                   f"{r.processing_s:.2f} s, real-time factor {r.processing_s / max(r.seconds, 1e-9):.3f})")
    else:
        rtf = report.processing_seconds / max(report.audio_seconds, 1e-9)
        speed = (f"; {report.audio_seconds:.1f} s of audio in {report.processing_seconds:.1f} s "
                 f"(real-time factor {rtf:.3f})") if report.done else ""
        click.echo(f"Done {len(report.done)}, skipped {len(report.skipped)}, failed {len(report.failed)} "
                   f"of {len(jobs) + len(problems)}{speed}")
    shown = report.skipped if len(report.skipped) <= SKIPPED_SHOWN else report.skipped[: SKIPPED_SHOWN - 1]
    for line in shown:
        click.echo(f"  skipped: {line}", err=True)
    if len(shown) < len(report.skipped):  # a rerun over a large folder: not one line per file
        click.echo(f"  skipped: {len(report.skipped) - len(shown)} more outputs that exist "
                   "(use --overwrite to replace them)", err=True)
    if report.failed:
        for line in report.failed:
            click.echo(f"  failed: {line}", err=True)
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("model", type=ANY_PATH)
@click.option("--compact-to", type=ANY_PATH, metavar="PATH.keras",
              help="Instead, write a small copy for shipping (float16 weights by default), with its LiteRT export.")
@click.option("--keras-weights", type=click.Choice(["float16", "int8"]), default="float16", show_default=True,
              help="Weights of the --compact-to copy: float16 (half the size) or int8 with one scale per "
                   "channel (a quarter of the size; read back by denoise as a float32 model).")
@click.option("--lite-weights", type=click.Choice(["float32", "float16", "int8"]),
              help="Weights of the LiteRT export: float32 (default), float16 (default with --compact-to; "
                   "half the size), int8 (a quarter of the size, 2-3 times as fast on a CPU; the shipped "
                   "models' exports).")
def export(model, compact_to, keras_weights, lite_weights) -> None:
    """Export MODEL (.keras, or a training folder) to LiteRT beside it, for fast prediction."""
    from .model_io import export_lite, lite_path, save_compact

    if not compact_to and click.get_current_context().get_parameter_source("keras_weights") == \
            click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--keras-weights does nothing without --compact-to")
    try:
        if compact_to:
            path = lite_path(save_compact(model, compact_to, lite_weights or "float16", keras_weights))
        else:
            path = export_lite(model, lite_weights or "float32")
    except DenoiseError as exc:
        _fail(exc)
    if compact_to:  # the copy is three files, kept together
        keras_path = Path(compact_to)
        click.echo(f"Wrote {keras_path}, {keras_path.with_suffix('.json')} and {path}")
    else:
        click.echo(f"Wrote {path}")


@main.command()
@click.option("--clean-dir", type=EXISTING_DIR,
              help="Clean reference files. Without it, input and output are scored by DNSMOS instead.")
@click.option("--noisy-dir", type=EXISTING_DIR, required=True, help="Noisy files, same relative paths as the clean ones.")
@click.option("--enhanced-dir", type=EXISTING_DIR, help="Already denoised files; default: denoise the noisy files now.")
@click.option("--out", type=EXISTING_DIR, default=Path("evaluation"), show_default=True,
              help="Report folder: per_file.csv, summary.json (and enhanced/ when denoising here).")
@click.option("--weights", type=ANY_PATH, help=WEIGHTS_HELP)
def evaluate(clean_dir, noisy_dir, enhanced_dir, out, weights) -> None:
    """Score noisy input and denoised output: against clean references (PESQ, STOI, SI-SDR), or,
    with no --clean-dir (your own recordings), by DNSMOS (SIG, BAK, OVRL; 1 to 5, higher is better).
    Needs the eval extra: pip install -e ".[eval]" in the checkout (or "denoise-unet[eval] @ git+URL").

    The exit code is 1 when a file could not be denoised or scored (each is named, and the report
    holds the rest)."""
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    from tqdm import tqdm

    from .evaluate import evaluate_folder, format_table

    bars: list = []

    def progress(stage: str, total: int):
        for bar in bars:  # the stage before is done
            bar.close()
        bars.append(tqdm(total=total, unit="file", desc=stage))
        return bars[-1].update

    try:
        run = evaluate_folder(noisy_dir, out, clean_dir, enhanced_dir, weights, progress)
    except DenoiseError as exc:
        _fail(exc)
    finally:
        for bar in bars:
            bar.close()
    for line in run.failed:
        click.echo(f"  failed: {line}", err=True)
    for line in run.report.problems:
        click.echo(f"  problem: {line}", err=True)
    for line in run.report.notes:
        click.echo(f"  note: {line}", err=True)
    if not run.report.rows:
        raise click.ClickException(f"{noisy_dir}: no file could be scored")
    click.echo(format_table(run.report))
    click.echo(f"Wrote {run.csv_path} and {run.json_path}")
    if not run.complete:  # like predict: a script learns that some files were left out
        raise click.exceptions.Exit(1)


def _host_names(_ctx, _param, values: tuple[str, ...]) -> tuple[str, ...]:
    """--public-name values: bare host names (no scheme, port or path), lower case."""
    import re

    for value in values:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", value or ""):
            raise click.BadParameter(f"{value!r}: give the host name alone, as talks.example.org "
                                     "(no scheme, port, path or trailing dot)")
    return tuple(v.lower() for v in values)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 opens the page to the network (no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port.")
@click.option("--weights", type=ANY_PATH, help=WEIGHTS_HELP)
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=50.0, show_default=True,
              help="Largest upload accepted, in MiB (2**20 bytes).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Longest recording accepted, in seconds.")
@click.option("--max-jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Recordings denoised at once; further requests wait their turn.")
@click.option("--runtime", type=click.Choice(["auto", "lite", "keras"]), default="auto", show_default=True,
              help="auto: the LiteRT export beside the model when present (fast, no TensorFlow), else Keras.")
@click.option("--public-name", "public_names", multiple=True, metavar="NAME", callback=_host_names,
              help="A host name a reverse proxy or tunnel serves the page under (repeatable): requests "
                   "addressed to it, and pages from it, are answered. Others are refused, so that other "
                   "web sites cannot use the server.")
def serve(host, port, weights, max_upload_mb, max_seconds, max_jobs, runtime, public_names) -> None:
    """Serve a web page (and HTTP API) that denoises recordings dropped or recorded in the browser."""
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    try:
        from .serve import Limits, run
    except ImportError as exc:
        raise click.ClickException(f"denoise serve needs the serve extra: fastapi, uvicorn and python-multipart "
                                   f"({exc.name or exc} is missing): " + install_hint("serve"))
    try:
        run(host, port, weights, Limits(max_upload_bytes=int(max_upload_mb * 2**20), max_seconds=max_seconds,
                                        max_jobs=max_jobs), runtime, echo=click.echo, public_names=public_names,
            warn=lambda text: click.echo(text, err=True))
    except DenoiseError as exc:
        _fail(exc)


if __name__ == "__main__":
    main()
