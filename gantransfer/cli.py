"""The ``gantransfer`` command line: a thin shell over the library.

Every command turns library errors (:class:`~gantransfer.errors.GantransferError`) and file-system
errors into one line on stderr and exit status 1; click's own usage errors are one line too, and
exit with status 2.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

import gantransfer
from gantransfer.backend import import_quietly
from gantransfer.config import DISTRIBUTIONS, load_config
from gantransfer.errors import ClusterError, GantransferError
from gantransfer.registry import STRATEGIES
from gantransfer.runs import DEFAULT_OUTPUT_ROOT, default_run_name

logger = logging.getLogger("gantransfer")

DEFAULT_PRESET = "digits"  # the embedded dataset: runs offline, in minutes


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Reports library and OS errors as one line and a non-zero exit, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClusterError as error:
            # Its peers gone, TensorFlow leaves threads blocked in collectives that never finish,
            # which Python's exit would report with tracebacks; the run's files are already safe.
            click.echo(f"Error: {error}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        except GantransferError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            where = f": {error.filename}" if getattr(error, "filename", None) else ""
            raise click.ClickException(f"{error.strerror or error}{where}") from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished epochs are kept in the run folder's checkpoints/ "
                       "(continue with --resume)", err=True)
            sys.exit(130)

    return wrapper


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _overrides(*, preset: bool = False, **flags: Any) -> list[str]:
    """Turns the common flags into ``section.key=value`` overrides (flags left unset add none).

    With ``preset`` (no ``--config``, so the default preset's digits settings), a ``--dataset``
    keeps its own channels: the preset's grey is the digits', not a colour folder's."""
    keys = {"dataset": "data.dataset", "image_size": "data.image_size", "epochs": "train.epochs",
            "batch_size": "train.batch_size", "seed": "train.seed"}
    own = ["data.channels=null"] if preset and flags.get("dataset") is not None else []
    return own + [f"{keys[name]}={value}" for name, value in flags.items() if value is not None]


def _runtime_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--mixed-precision``, ``--jit-compile`` and ``--distribute``: the ``train.precision``,
    ``train.jit_compile`` and ``train.distribute`` overrides, ahead of ``--set`` (which wins)."""
    @functools.wraps(command)
    def run(*args: Any, precision: str | None, jit_compile: bool | None,
            distribute: str | None, overrides: tuple[str, ...] = (), **kwargs: Any) -> Any:
        runtime = {"train.precision": precision and f"mixed_{precision}",
                   "train.jit_compile": None if jit_compile is None else str(jit_compile).lower(),
                   "train.distribute": distribute}
        flags = tuple(f"{key}={value}" for key, value in runtime.items() if value is not None)
        return command(*args, overrides=(*flags, *overrides), **kwargs)

    options = [
        click.option("--mixed-precision", "precision", type=click.Choice(["float16", "bfloat16"]),
                     is_flag=False, flag_value="float16", default=None,
                     help="Compute in 16 bits, weights in float32: float16 (the default with no "
                     "value; NVIDIA tensor cores, losses scaled) or bfloat16. Outputs and saved "
                     "models stay float32."),
        click.option("--jit-compile/--no-jit-compile", default=None,
                     help="XLA-compile the training steps (default: TensorFlow on a GPU only; "
                     "JAX always, and --no-jit-compile there runs eagerly, far slower)."),
        click.option("--distribute", type=click.Choice(list(DISTRIBUTIONS)),
                     help="mirrored: train on every local GPU, one replica each. multi-worker "
                     "(train-gan, compare): the GAN on every machine TF_CONFIG names, each with "
                     "its local GPUs; only the chief writes. The batch size is the global batch."),
    ]
    for option in reversed(options):
        run = option(run)
    return run


class _NeverRaised(Exception):
    """Stands in for an exception that this click version does not have."""


# What a group raises to show its help when given no arguments (click 8.2 and later; 8.1 exits).
_HELP_FOR_NO_ARGUMENTS = getattr(click.exceptions, "NoArgsIsHelpError", _NeverRaised)


class _OneLineUsageError(click.UsageError):
    """A malformed command line (a bad flag, a missing argument, a path that does not exist), told
    in one line with where to look, not click's usage block; the exit status stays 2."""

    @classmethod
    def of(cls, error: click.UsageError) -> _OneLineUsageError:
        return cls(error.format_message(), error.ctx)

    def show(self, file: Any = None) -> None:
        where = f" See '{self.ctx.command_path} --help'." if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{where}", file=file, err=file is None)


class _OneLineUsage:
    """Makes a click command report its usage errors as :class:`_OneLineUsageError`."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)  # type: ignore[misc]
        except (_OneLineUsageError, _HELP_FOR_NO_ARGUMENTS):
            raise  # bare `gantransfer` shows its help, as click does
        except click.UsageError as error:
            raise _OneLineUsageError.of(error) from None


class _Command(_OneLineUsage, click.Command):
    pass


class _Group(_OneLineUsage, click.Group):
    command_class = _Command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:  # no such command
            raise _OneLineUsageError.of(error) from None


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(gantransfer.__version__, "--version", prog_name="gantransfer")
def cli() -> None:
    """Train a DCGAN on unlabeled images and transfer its discriminator to few-label classifiers.

    \b
    Example:
      gantransfer compare
      gantransfer train-gan --config fashion_mnist --set gan.latent_dim=64
      gantransfer transfer --gan-run outputs/fmnist-gan --dataset fashion_mnist
      gantransfer sample outputs/fmnist-gan --num-images 64 --grid samples.png
    """


@cli.command("train-gan")
@click.option("--config", "config_file",
              help="YAML config or preset name (digits, fashion_mnist, cifar10; default digits). "
              "With --resume, defaults to the run's config.yaml.")
@click.option("--dataset", help="Dataset name (digits, mnist, fashion_mnist, cifar10, cifar100) or a "
              "path to an image folder, .npz or IDX files.")
@click.option("--image-size", type=int, help="Image side: 4 or 7 times a power of two, at least 8 "
              "(28, 32, 64, ...).")
@click.option("--epochs", type=int, help="Total epochs (with --resume: train up to this many).")
@click.option("--batch-size", type=int,
              help="Images per step (default: the config's train.batch_size).")
@click.option("--seed", type=int, help="Seed of every random draw (and of the test split and the "
              "probe's images, unless the config sets data.split_seed or train.probe_seed).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: outputs/<dataset>-train-gan-<time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --output-dir from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output-dir.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. --set gan.latent_dim=64 (repeatable).")
@click.option("--quiet", is_flag=True, help="Only warnings and errors; no progress bar.")
@_runtime_options
@_user_errors
def train_gan_command(config_file: str | None, dataset: str | None, image_size: int | None,
                      epochs: int | None, batch_size: int | None, seed: int | None,
                      output_dir: Path | None, resume: bool, overwrite: bool,
                      overrides: tuple[str, ...], quiet: bool) -> None:
    """Train a DCGAN and write samples, checkpoints, curves and .keras models to a run folder.

    With --set train.probe_every=N, a linear probe scores the discriminator's features every N
    epochs on labeled training images (never the test split) and the best-scoring discriminator is
    kept as discriminator_best_probe.keras; on unlabeled data the probe is off, with a warning.

    \b
    Example:
      gantransfer train-gan --dataset fashion_mnist --epochs 5 --output-dir outputs/fmnist-gan
      gantransfer train-gan --output-dir outputs/fmnist-gan --resume --epochs 10
      gantransfer train-gan --dataset digits --epochs 20 --set train.probe_every=2
    """
    _setup_logging(quiet)
    flags = _overrides(dataset=dataset, image_size=image_size, epochs=epochs, batch_size=batch_size,
                       seed=seed, preset=config_file is None and not resume)
    config = load_config(_config_file(config_file, output_dir, resume), [*flags, *overrides])
    if quiet:
        config.train.verbose = 0
    output_dir = _run_folder(output_dir, "train-gan", config)

    import_quietly()
    from gantransfer.gan.train import train_gan

    result = train_gan(config, output_dir, resume=resume, overwrite=overwrite)
    if not result.chief:
        click.echo(f"trained alongside the chief, which wrote the run folder: {result.run_dir}")
        return
    _print_summary(result.run_dir, result.manifest)


def _run_folder(output_dir: Path | None, command: str, config: Any) -> Path:
    """``--output-dir``, or a new folder in outputs/ named after the command, dataset and time."""
    if output_dir is not None:
        return output_dir
    if config.train.distribute == "multi-worker":
        raise GantransferError("--distribute multi-worker needs --output-dir: the same run folder "
                               "on every worker, on a file system they all see")
    return DEFAULT_OUTPUT_ROOT / default_run_name(command, config.data.dataset)


def _print_summary(run_dir: Path, manifest: dict[str, Any]) -> None:
    click.echo(f"run folder: {run_dir}")
    sessions = manifest.get("sessions", [])
    line = f"  {manifest['dataset']['images']} images, {manifest['epochs']} epochs"
    if len(sessions) > 1:  # a resumed run: the figures are the whole run's
        spans = ", ".join(f"{s['epochs'][0]}-{s['epochs'][1]}" if len(s["epochs"]) == 2
                          else "models written" for s in sessions)
        line += f" in {len(sessions)} sessions (epochs {spans})"
    click.echo(f"{line}, {manifest['images_per_second']:.0f} images/s, "
               f"{manifest['wall_time_s']:.0f} s")
    for name in ("generator.keras", "discriminator.keras", "samples/", "losses.png", "history.csv",
                 "checkpoints/", "config.yaml", "run.json"):
        click.echo(f"  {run_dir / name}")
    if "best_probe_epoch" in manifest:
        click.echo(f"  {run_dir / 'discriminator_best_probe.keras'} (epoch "
                   f"{manifest['best_probe_epoch']}, probe accuracy "
                   f"{manifest['best_probe_accuracy']:.3f})")


def _transfer_overrides(strategies: str | None, labels_per_class: str | None, seeds: int | None,
                        backbone: str | None, backbone_alpha: float | None,
                        backbone_input_size: int | None, backbone_weights: str | None,
                        head: str | None, settings: dict[str, Any]) -> list[str]:
    pairs = {f"transfer.{key}": value for key, value in settings.items()}
    pairs |= {"transfer.strategies": strategies, "transfer.labels_per_class": labels_per_class,
             "transfer.head": head,
             "transfer.seeds": seeds, "transfer.backbone": backbone,
             "transfer.backbone_alpha": backbone_alpha,
             "transfer.backbone_input_size": backbone_input_size,
             "transfer.backbone_weights": backbone_weights}
    return [f"{key}={value}" for key, value in pairs.items() if value is not None]


def _load_transfer_config(source: str, flags: list[str], overrides: tuple[str, ...],
                          backbone: str | None, backbone_alpha: float | None) -> Any:
    """The config of ``transfer`` or ``compare``. A ``--backbone`` other than the config's, given
    without ``--backbone-alpha``, runs at full width (alpha 1.0, keras.applications' default): the
    config's alpha was its own backbone's (the presets' MobileNet at 0.25); ``--set`` still wins."""
    if backbone is not None and backbone_alpha is None \
            and _backbone_name(load_config(source).transfer.backbone) != _backbone_name(backbone):
        flags = [*flags, "transfer.backbone_alpha=1.0"]
    return load_config(source, [*flags, *overrides])


def _backbone_name(name: str) -> str:
    """A backbone's registry name (``MobileNet`` is ``mobilenet``); an unknown name as it is, for
    the config's own check to refuse."""
    from gantransfer.transfer_learning.backbones import get_backbone_spec

    try:
        return get_backbone_spec(name).name
    except GantransferError:
        return name


def _transfer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``transfer`` and ``compare`` share."""
    options = [
        click.option("--config", "config_file",
                     help="YAML config or preset name (digits, fashion_mnist, cifar10; default "
                     "digits)."),
        click.option("--dataset", help="Target dataset: a name or a path (a labeled image folder, "
                     ".npz or IDX files)."),
        click.option("--strategies", help=f"Comma-separated: {', '.join(STRATEGIES)}."),
        click.option("--labels-per-class", help="Comma-separated label budgets, e.g. 10,100,all."),
        click.option("--seeds", type=int, help="Number of seeds per budget."),
        click.option("--head", type=click.Choice(["auto", "gap", "flatten", "pooled"]),
                     help="How heads read the trunk: global average pooling, the flattened map, "
                     "every block pooled to 4x4, or auto (the head the trunk was pretrained with)."),
        click.option("--dropout", type=float, help="Dropout before the head's Dense layer."),
        click.option("--l2", type=float, help="L2 weight decay on the head."),
        click.option("--trunk-dropout", type=float, help="Spatial dropout after every conv block "
                     "of a DCGAN-architecture trunk (acts where it trains in training mode: scratch)."),
        click.option("--trunk-l2", type=float, help="L2 weight decay on a DCGAN-architecture "
                     "trunk's conv kernels (acts where it trains: scratch, fine-tuning)."),
        click.option("--backbone", help="ImageNet backbone: mobilenet, mobilenet_v2, resnet50, "
                     "efficientnet_b0."),
        click.option("--backbone-alpha", type=float,
                     help="MobileNet width multiplier, e.g. 0.25 (default: the config's, or 1.0 "
                     "with a --backbone other than the config's)."),
        click.option("--backbone-input-size", type=int, help="Backbone input side, e.g. 224."),
        click.option("--backbone-weights", help="imagenet, a weights file, or none."),
        click.option("--workers", metavar="N|auto",
                     help="Models trained at once, each in its own process on one thread (auto: "
                     "one per core on a CPU, 1 on a GPU; 1 trains them here, in turn)."),
        click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Run folder (default: outputs/<dataset>-<command>-<time>)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing --output-dir."),
        click.option("--resume", is_flag=True, help="Continue the interrupted run in --output-dir: "
                     "finished models are kept, the rest trained (same config). It may add "
                     "--seeds, --labels-per-class and --strategies, to a complete run too."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override any config key, e.g. --set transfer.max_epochs=50."),
        click.option("--quiet", is_flag=True, help="Only warnings and errors."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config_file(config_file: str | None, output_dir: Path | None, resume: bool) -> str:
    """The config to load: the one given, or with ``--resume`` the run's own config.yaml."""
    if not resume:
        return config_file or DEFAULT_PRESET
    if output_dir is None:
        raise GantransferError("--resume needs --output-dir: the run folder to continue")
    if config_file is None:
        if not (output_dir / "config.yaml").is_file():
            raise GantransferError(f"cannot resume: {str(output_dir)!r} is not a run folder (no "
                                   "config.yaml); pass the folder of an earlier run")
        return str(output_dir / "config.yaml")
    return config_file


def _print_report(result: Any) -> None:
    """Where the run's files are, then the answer it was run for: the verdict's headline, one
    sentence per label budget (the report has the rest)."""
    from gantransfer.evaluation.summary import headline

    click.echo(f"run folder: {result.run_dir}")
    ok = [r for r in result.results if r.status == "ok"]
    kept = f" ({result.kept} of them in earlier sessions, kept)" if result.kept else ""
    click.echo(f"  {len(ok)} models trained{kept}, {len(result.results) - len(ok)} skipped")
    for name in ("report.html", "report.md", "results.csv", "results.json"):
        if name in result.files:
            click.echo(f"  {result.files[name]}")
    click.echo(f"  {result.run_dir / 'models'}")
    sentences = headline(result.results) if ok else []
    if sentences:
        click.echo("verdict (paired 95% intervals over seeds; every comparison is in the report):")
        for sentence in sentences:
            click.echo(f"  {sentence}")


@cli.command("transfer")
@click.option("--gan-run", type=click.Path(exists=True, file_okay=False, path_type=Path),
              multiple=True, help="A train-gan run folder: its discriminator seeds the gan-* "
              "strategies. Give one per seed, in seed order, to start each seed's from its own "
              "GAN (GANs trained at different --seed).")
@click.option("--discriminator", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, help="A discriminator .keras file, instead of --gan-run (or one "
              "per seed).")
@_transfer_options
@_runtime_options
@_user_errors
def transfer_command(gan_run: tuple[Path, ...], discriminator: tuple[Path, ...],
                     config_file: str | None,
                     dataset: str | None, strategies: str | None, labels_per_class: str | None,
                     seeds: int | None, head: str | None, dropout: float | None,
                     l2: float | None, trunk_dropout: float | None, trunk_l2: float | None,
                     backbone: str | None, backbone_alpha: float | None,
                     backbone_input_size: int | None, backbone_weights: str | None,
                     workers: str | None, output_dir: Path | None, overwrite: bool, resume: bool,
                     overrides: tuple[str, ...], quiet: bool) -> None:
    """Compare transfer strategies on a labeled target dataset.

    --gan-run or --discriminator is needed only when a gan-* strategy is asked for. The target
    images are brought to the GAN's image size and channels.

    \b
    Example:
      gantransfer transfer --gan-run outputs/fmnist-gan --dataset fashion_mnist \\
          --strategies scratch,gan-frozen,gan-linear-probe --labels-per-class 10,100 --seeds 3
      gantransfer transfer --dataset digits --strategies scratch,imagenet-frozen \\
          --backbone mobilenet --backbone-alpha 0.25 --backbone-weights none
    """
    _setup_logging(quiet)
    if gan_run and discriminator:
        raise GantransferError("pass --gan-run or --discriminator, not both")
    flags = _overrides(dataset=dataset, preset=config_file is None and not resume)
    flags += _transfer_overrides(strategies, labels_per_class, seeds, backbone, backbone_alpha,
                                 backbone_input_size, backbone_weights, head,
                                 {"dropout": dropout, "l2": l2, "trunk_dropout": trunk_dropout,
                                  "trunk_l2": trunk_l2, "workers": workers})
    config = _load_transfer_config(_config_file(config_file, output_dir, resume), flags, overrides,
                                   backbone, backbone_alpha)
    if output_dir is None:
        output_dir = DEFAULT_OUTPUT_ROOT / default_run_name("transfer", config.data.dataset)
    import_quietly()
    from gantransfer.workflows.experiment import transfer

    given = list(gan_run or discriminator)
    result = transfer(config, output_dir, discriminator=given if len(given) > 1 else
                      (given[0] if given else None), overwrite=overwrite, resume=resume,
                      verbose=not quiet)
    _print_report(result)


@cli.command("compare")
@click.option("--epochs", type=int, help="GAN training epochs.")
@click.option("--gan-per-seed", is_flag=True, help="Train one GAN per seed, so the intervals "
              "include the GAN's own run-to-run variation (costs --seeds GANs).")
@_transfer_options
@_runtime_options
@_user_errors
def compare_command(epochs: int | None, gan_per_seed: bool, config_file: str | None,
                    dataset: str | None,
                    strategies: str | None, labels_per_class: str | None, seeds: int | None,
                    head: str | None, dropout: float | None, l2: float | None,
                    trunk_dropout: float | None, trunk_l2: float | None, backbone: str | None,
                    backbone_alpha: float | None, backbone_input_size: int | None,
                    backbone_weights: str | None, workers: str | None, output_dir: Path | None,
                    overwrite: bool,
                    resume: bool, overrides: tuple[str, ...], quiet: bool) -> None:
    """Train a DCGAN on the unlabeled images, then compare every strategy: the main job.

    With no arguments it runs on the embedded digits dataset, offline, in minutes. ImageNet
    strategies are skipped, with the reason in the report, when their weights are neither cached
    nor downloadable.

    \b
    Example:
      gantransfer compare
      gantransfer compare --config fashion_mnist --output-dir outputs/fmnist-compare
      gantransfer compare --labels-per-class 10,all --seeds 5 --set transfer.augment_shift=0.1
    """
    _setup_logging(quiet)
    flags = _overrides(dataset=dataset, epochs=epochs, preset=config_file is None and not resume)
    flags += _transfer_overrides(strategies, labels_per_class, seeds, backbone, backbone_alpha,
                                 backbone_input_size, backbone_weights, head,
                                 {"dropout": dropout, "l2": l2, "trunk_dropout": trunk_dropout,
                                  "trunk_l2": trunk_l2, "workers": workers})
    flags += ["transfer.gan_per_seed=true"] if gan_per_seed else []
    config = _load_transfer_config(_config_file(config_file, output_dir, resume), flags, overrides,
                                   backbone, backbone_alpha)
    if quiet:
        config.train.verbose = 0
    output_dir = _run_folder(output_dir, "compare", config)
    import_quietly()
    from gantransfer.workflows.experiment import compare

    result = compare(config, output_dir, overwrite=overwrite, resume=resume, verbose=not quiet)
    if not result.chief:
        click.echo("trained the GAN alongside the chief, which trains the classifiers and writes "
                   f"the run folder: {result.run_dir}")
        return
    _print_report(result)


@cli.command("sample")
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="RUN_DIR|GENERATOR_FILE")
@click.option("--num-images", type=int, default=64, show_default=True, help="Images to draw.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the noise: the same seed gives the same images.")
@click.option("--grid", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the images as one PNG grid here (default: samples.png, unless --out-dir).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one PNG per image into this folder.")
@click.option("--interpolate", "steps", type=int,
              help="Instead: K-step latent interpolations between random pairs, one row per pair "
              "(--num-images rows).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@_user_errors
def sample_command(source: Path, num_images: int, seed: int, grid: Path | None,
                   out_dir: Path | None, steps: int | None, overwrite: bool) -> None:
    """Draw images from a trained generator (a run folder or a generator .keras file).

    \b
    Example:
      gantransfer sample outputs/fmnist-gan --num-images 64 --seed 1 --grid fmnist.png
      gantransfer sample outputs/fmnist-gan/generator.keras --num-images 10 --out-dir samples/
      gantransfer sample outputs/fmnist-gan --num-images 6 --interpolate 10 --grid walk.png
    """
    _setup_logging(quiet=True)
    if num_images < 1:
        raise GantransferError(f"--num-images: received {num_images}, expected an integer >= 1")
    if grid is None and out_dir is None:
        grid = Path("samples.png")
    import_quietly()
    from gantransfer.gan.sampling import write_samples

    write_samples(source, num_images=num_images, seed=seed, grid=grid, out_dir=out_dir,
                  interpolate_steps=steps, overwrite=overwrite)
    count = num_images * (steps or 1)
    if grid is not None:
        click.echo(f"wrote {grid} ({count} images)")
    if out_dir is not None:
        click.echo(f"wrote {count} images to {out_dir}")


@cli.command("evaluate-gan")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--num-images", type=int, default=2000, show_default=True,
              help="Real and generated images compared.")
@click.option("--extractor", type=click.Choice(["auto", "classifier", "inception"]), default="auto",
              show_default=True, help="Feature extractor: InceptionV3 (cached weights), a small "
              "classifier trained on the dataset's labels, or auto (Inception when cached).")
@click.option("--seed", type=int, default=0, show_default=True)
@_user_errors
def evaluate_gan_command(run_dir: Path, num_images: int, extractor: str, seed: int) -> None:
    """Score a train-gan run's generator with FID and KID, offline.

    \b
    Example:
      gantransfer evaluate-gan outputs/fmnist-gan
      gantransfer evaluate-gan outputs/fmnist-gan --num-images 5000 --extractor classifier
    """
    _setup_logging(quiet=False)
    import_quietly()
    from gantransfer.workflows.scoring import evaluate_gan

    scores = evaluate_gan(run_dir, num_images=num_images, extractor=extractor, seed=seed)
    click.echo(f"FID {scores['fid']:.3f}, KID {scores['kid']:.5f} ± {scores['kid_std']:.5f} "
               f"({scores['extractor']} features, {scores['real_images']} real vs "
               f"{scores['generated_images']} generated images)")
    click.echo(f"  {run_dir / 'gan_metrics.json'}")


@cli.command("visualize")
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="MODEL|RUN_DIR")
@click.option("--dataset", help="Images to look at (and, when labeled, embed): a name or a path. "
              "Default: the run's own dataset, or digits.")
@click.option("--image", "image_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One image file for the feature maps and Grad-CAM (default: a test image).")
@click.option("--index", type=int, default=0, show_default=True,
              help="Which test image, without --image.")
@click.option("--layer", "layer_names", multiple=True,
              help="Conv layers whose feature maps to show (repeatable; default the first two).")
@click.option("--class", "class_index", type=int, help="Class for Grad-CAM (default the predicted).")
@click.option("--embedding", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True)
@click.option("--embedding-images", type=int, default=1000, show_default=True)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the PNGs go (default: outputs/<dataset>-visualize-<time>).")
@click.option("--overwrite", is_flag=True, help="Replace existing PNGs in --out-dir.")
@_user_errors
def visualize_command(source: Path, dataset: str | None, image_file: Path | None, index: int,
                      layer_names: tuple[str, ...], class_index: int | None, embedding: str,
                      embedding_images: int, out_dir: Path | None, overwrite: bool) -> None:
    """Show what a network learned: filters, feature maps, Grad-CAM and a 2-D embedding.

    MODEL is a .keras discriminator, trunk or classifier; a train-gan run folder means its
    discriminator. Grad-CAM needs a classifier (e.g. from compare's models/).

    \b
    Example:
      gantransfer visualize outputs/fmnist-gan --out-dir outputs/fmnist-pictures
      gantransfer visualize outputs/cmp/models/gan-finetune_lpc-10_seed-0.keras --index 3 --embedding tsne
    """
    _setup_logging(quiet=False)
    import_quietly()
    from gantransfer.workflows.pictures import visualize_model

    written = visualize_model(source, dataset=dataset, image_file=image_file, index=index,
                              layers=layer_names, class_index=class_index, embedding=embedding,
                              embedding_images=embedding_images, out_dir=out_dir,
                              overwrite=overwrite)
    for kind, path in written.items():
        click.echo(f"{kind}: {path}")


def _epsilons(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GantransferError(f"--epsilons: received {text!r}; give numbers on the [0, 1] pixel "
                               "scale separated by commas, e.g. 0,0.01,0.03,0.1") from None


@cli.command("attack")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                metavar="MODEL.keras")
@click.option("--dataset", help="Whose test images to attack: a name or a path. Default: the run's "
              "own dataset for a model in a run's models/ folder, else digits.")
@click.option("--epsilons", default="0,0.01,0.03,0.1", show_default=True,
              help="L-infinity budgets on the [0, 1] pixel scale, comma-separated; 0 is clean.")
@click.option("--method", type=click.Choice(["fgsm", "pgd"]), default="pgd", show_default=True)
@click.option("--steps", type=int, default=20, show_default=True, help="PGD iterations.")
@click.option("--step-size", type=float,
              help="PGD step as a multiple of epsilon (default 2.5 / steps, as in Madry et al.).")
@click.option("--restarts", type=int, default=1, show_default=True, help="PGD random restarts.")
@click.option("--no-random-start", is_flag=True, help="Start PGD at the image itself.")
@click.option("--images", type=int, default=1000, show_default=True,
              help="Attack the first this many test images.")
@click.option("--examples", type=int, default=4, show_default=True,
              help="Images in the picture of original, perturbation and adversarial image.")
@click.option("--picture-epsilon", type=float, help="The budget the picture shows (default the "
              "largest of --epsilons).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of PGD's random starts.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the files go (default: outputs/<dataset>-attack-<time>).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier attack's files in --out-dir.")
@_user_errors
def attack_command(model_file: Path, dataset: str | None, epsilons: str, method: str, steps: int,
                   step_size: float | None, restarts: int, no_random_start: bool, images: int,
                   examples: int, picture_epsilon: float | None, seed: int,
                   out_dir: Path | None, overwrite: bool) -> None:
    """Attack a saved classifier with FGSM or PGD: accuracy under attack against epsilon.

    MODEL.keras is any classifier gantransfer saved (a compare or transfer run's models/, linear
    probes included). Writes robustness.csv, robustness.png (the curve), adversarial_examples.png
    (image, perturbation scaled for display, adversarial image, each with its prediction) and
    attack.json.

    \b
    Example:
      gantransfer attack outputs/cmp/models/gan-finetune_lpc-10_seed-0.keras --method fgsm
      gantransfer attack outputs/cmp/models/scratch_lpc-10_seed-0.keras --epsilons 0,0.02,0.05,0.1 \\
          --method pgd --steps 20 --out-dir outputs/cmp-attack
    """
    _setup_logging(quiet=False)
    import_quietly()
    from gantransfer.robustness import AttackSettings
    from gantransfer.workflows.attacking import attack_model, describe

    settings = AttackSettings(method=method, steps=steps, step_size=step_size,
                              random_start=not no_random_start, restarts=restarts, seed=seed)
    result = attack_model(model_file, dataset=dataset, epsilons=_epsilons(epsilons),
                          settings=settings, images=images, examples=examples,
                          picture_epsilon=picture_epsilon, out_dir=out_dir, overwrite=overwrite)
    click.echo(describe(result))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="gantransfer")


if __name__ == "__main__":
    main()
