"""Typed run configuration: YAML in, validated dataclasses out, resolved YAML written back.

A config has one section per concern (``data``, ``gan``, ``train``). Every key can be set from a YAML
file and overridden from the command line as ``section.key=value``. Unknown keys, wrong types and
out-of-range values raise :class:`~gantransfer.errors.ConfigError` naming the key, the value received
and what is allowed.

Example:
    >>> from gantransfer.config import load_config
    >>> config = load_config(None, overrides=["gan.latent_dim=64", "train.epochs=2"])
    >>> config.gan.latent_dim, config.train.epochs
    (64, 2)
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from gantransfer.errors import ConfigError
from gantransfer.registry import STRATEGIES
from gantransfer.shapes import check_image_size


def _check(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: received {value!r}, expected {allowed}")


def _is_count(value: Any, least: int) -> bool:
    """Whether ``value`` is a whole number (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


@dataclasses.dataclass
class DataConfig:
    """Which images to load and how to shape them.

    Attributes:
        dataset: A registered name (digits, mnist, fashion_mnist, cifar10, cifar100) or a path to an
            image folder, a ``.npz`` file or MNIST-format IDX files.
        image_size: Side length the images are resized to, one the DCGAN can build: 4 or 7 times a
            power of two, at least 8 (8, 14, 16, 28, 32, 56, 64, ...).
        channels: 1 or 3 to convert, or null to keep the source's channels.
        test_split: Fraction held out for testing, for sources without their own test split.
        split_seed: Seed of that draw; null takes ``train.seed`` (and a saved config records the
            seed it took, so a run repeated at another ``train.seed`` tests on the same images).
        max_in_memory_mb: Image folders larger than this (decoded) are streamed from disk.
    """

    dataset: str = "digits"
    image_size: int = 32
    channels: int | None = None
    test_split: float = 0.2
    split_seed: int | None = None
    max_in_memory_mb: float = 2048.0

    def __post_init__(self) -> None:
        _check("data.dataset", self.dataset, bool(self.dataset.strip()), "a dataset name or path")
        check_image_size(self.image_size, key="data.image_size")
        _check("data.channels", self.channels, self.channels in (None, 1, 3), "1, 3 or null")
        _check("data.test_split", self.test_split, 0 <= self.test_split < 1, "a fraction in [0, 1)")
        _check("data.split_seed", self.split_seed,
               self.split_seed is None or 0 <= self.split_seed < 2**32,
               "an integer in [0, 2**32), or null for train.seed")
        _check("data.max_in_memory_mb", self.max_in_memory_mb, self.max_in_memory_mb > 0,
               "a number of megabytes > 0")


@dataclasses.dataclass
class GANConfig:
    """DCGAN architecture and optimiser (Radford et al. 2015 defaults).

    Attributes:
        latent_dim: Length of the generator's noise vector z.
        width: Width multiplier on the base 64 filters (1.0 is the paper's 64-128-256...).
        kernel_size: Convolution kernel size in both networks.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1 of both networks.
        leaky_relu_slope: Negative slope of the discriminator's LeakyReLU.
        rotation_weight: Rotation self-supervision (SS-GAN, Chen et al. 2019): the discriminator
            also learns to tell by how much (0, 90, 180, 270 degrees) a real image was rotated,
            with this weight on that loss; the generator is rewarded, at 0.2 times this weight,
            when its images' rotations can be told. 1.0 is the paper's setting; 0 is the plain
            DCGAN.
    """

    latent_dim: int = 100
    width: float = 1.0
    kernel_size: int = 5
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    leaky_relu_slope: float = 0.2
    rotation_weight: float = 0.0

    def __post_init__(self) -> None:
        _check("gan.latent_dim", self.latent_dim, self.latent_dim >= 1, "an integer >= 1")
        _check("gan.width", self.width, 0 < self.width <= 16 and round(64 * self.width) >= 1,
               "a multiplier in (0, 16] giving at least one filter")
        _check("gan.kernel_size", self.kernel_size, 1 <= self.kernel_size <= 9, "an integer in [1, 9]")
        _check("gan.learning_rate", self.learning_rate, 0 < self.learning_rate < 1, "a number in (0, 1)")
        _check("gan.beta_1", self.beta_1, 0 <= self.beta_1 < 1, "a number in [0, 1)")
        _check("gan.leaky_relu_slope", self.leaky_relu_slope, 0 <= self.leaky_relu_slope < 1,
               "a number in [0, 1)")
        _check("gan.rotation_weight", self.rotation_weight, 0 <= self.rotation_weight <= 100,
               "a weight in [0, 100] (0 turns rotation self-supervision off)")


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTIONS = ("none", "mirrored", "multi-worker")


@dataclasses.dataclass
class TrainConfig:
    """How long and how to train, and what to write along the way.

    Attributes:
        epochs: Number of passes over the training images.
        batch_size: Images per step.
        seed: Seed of every random draw: shuffling, noise, initial weights, and the test split
            unless ``data.split_seed`` is set.
        deterministic: Ask TensorFlow for deterministic kernels (slower; bitwise-repeatable runs).
        keep_checkpoints: How many recent checkpoints to keep; 0 keeps all.
        sample_images: Images in each epoch's sample grid (a square number fills the grid).
        tensorboard: Also write TensorBoard logs into the run folder.
        verbose: Keras progress display: 0 silent, 1 progress bar, 2 one line per epoch.
        metrics_every: Log FID and KID every this many epochs (and after the last); 0 is off.
        metrics_images: Real and generated images those metrics compare.
        stop_on_collapse: Stop when training has collapsed (D's loss pinned near 0, or G's images
            saturated at ±1, two epochs in a row) instead of only warning.
        probe_every: Score the discriminator's features with a linear probe every this many epochs
            (and after the last), log it as ``probe_accuracy`` and keep the best-scoring
            discriminator as ``discriminator_best_probe.keras``; 0 is off. It needs labels: on
            unlabeled data it is off, with a warning. It never looks at the test split.
        probe_labels_per_class: Labeled training images per class the probe fits on.
        probe_images: Other training images (disjoint from those) the probe is scored on.
        probe_seed: Seed of the draw of those images; null takes ``train.seed`` (and a saved config
            records the seed it took), so GANs trained at other seeds from one config, as
            ``compare --gan-per-seed`` trains them, are probed on the same images.
        precision: What layers compute in, for the GAN and every classifier of the run:
            ``float32``, ``mixed_float16`` (GPUs with tensor cores; losses are scaled) or
            ``mixed_bfloat16`` (recent GPUs and TPUs). Weights, final logits, generated images and
            saved models stay float32.
        jit_compile: XLA for the training steps: true, false, or ``auto`` (Keras's rule: on a GPU,
            not on a CPU, where it measured slower for a DCGAN step; JAX always compiles).
        distribute: ``none``, or ``mirrored``: every local GPU, one replica each
            (``tf.distribute.MirroredStrategy`` on TensorFlow, ``keras.distribution.DataParallel``
            on JAX). ``train.batch_size`` is the global batch, split across replicas.
            ``multi-worker`` (TensorFlow; GAN training only): every machine ``TF_CONFIG`` names,
            each with its local GPUs, through ``tf.distribute.MultiWorkerMirroredStrategy``; only
            the chief writes the run folder, which the others must see to resume. ``compare``
            trains its classifiers on the chief alone.
    """

    epochs: int = 25
    batch_size: int = 128
    seed: int = 0
    deterministic: bool = False
    keep_checkpoints: int = 3
    sample_images: int = 64
    tensorboard: bool = False
    verbose: int = 1
    metrics_every: int = 0
    metrics_images: int = 1000
    stop_on_collapse: bool = False
    probe_every: int = 0
    probe_labels_per_class: int = 10
    probe_images: int = 1000
    probe_seed: int | None = None
    precision: str = "float32"
    jit_compile: bool | str = "auto"
    distribute: str = "none"

    def __post_init__(self) -> None:
        _check("train.precision", self.precision, self.precision in PRECISIONS,
               " or ".join(PRECISIONS))
        _check("train.jit_compile", self.jit_compile,
               isinstance(self.jit_compile, bool) or self.jit_compile == "auto",
               "true, false or auto")
        _check("train.distribute", self.distribute, self.distribute in DISTRIBUTIONS,
               " or ".join(DISTRIBUTIONS))
        _check("train.probe_every", self.probe_every, self.probe_every >= 0,
               "an integer >= 0 (0 is off)")
        _check("train.probe_labels_per_class", self.probe_labels_per_class,
               self.probe_labels_per_class >= 1, "an integer >= 1")
        _check("train.probe_images", self.probe_images, self.probe_images >= 1, "an integer >= 1")
        _check("train.probe_seed", self.probe_seed,
               self.probe_seed is None or 0 <= self.probe_seed < 2**32,
               "an integer in [0, 2**32), or null for train.seed")
        _check("train.metrics_every", self.metrics_every, self.metrics_every >= 0,
               "an integer >= 0 (0 is off)")
        _check("train.metrics_images", self.metrics_images, self.metrics_images >= 2,
               "an integer >= 2")
        _check("train.epochs", self.epochs, self.epochs >= 1, "an integer >= 1")
        _check("train.batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1")
        _check("train.seed", self.seed, 0 <= self.seed < 2**32, "an integer in [0, 2**32)")
        _check("train.keep_checkpoints", self.keep_checkpoints, self.keep_checkpoints >= 0,
               "an integer >= 0 (0 keeps all)")
        _check("train.sample_images", self.sample_images, 1 <= self.sample_images <= 1024,
               "an integer in [1, 1024]")
        _check("train.verbose", self.verbose, self.verbose in (0, 1, 2), "0, 1 or 2")


def _strategy_names() -> tuple[str, ...]:
    return tuple(STRATEGIES)


@dataclasses.dataclass
class TransferConfig:
    """The comparison: which strategies, which label budgets, how many seeds, and how to train.

    Every strategy trains the same way (validation-based learning-rate choice and early stopping,
    the same optional augmentation), so no baseline is a strawman.

    Attributes:
        strategies: Strategy names (see ``gantransfer transfer --help``); by default every one
            but the semi-supervised GANs (gan-semisupervised, random-semisupervised), each of
            whose models trains a GAN.
        labels_per_class: Label budgets per class; ``all`` uses every label.
        seeds: Seeds 0..seeds-1; each draws its own budget, validation split and initialisation.
        validation_fraction: Share of each class's budget held out for validation.
        head: How a head reads the trunk's feature map: gap (average over positions), flatten
            (every position), pooled (every conv block max-pooled to 4x4 and concatenated), or auto:
            the head the trunk was pretrained with (flatten for the DCGAN architecture: the
            gan-*, random-* and scratch strategies; gap for ImageNet backbones).
        refit: After validation has chosen the learning rate or C, the phase and the epochs,
            train the final model again on every labeled image of the budget with those choices.
        cv_folds: With refit, every strategy makes its choices (learning rate or C, epochs,
            whether fine-tuning helps) by stratified k-fold cross-validation over the whole budget
            (capped at the smallest class's count), augmentation and adversarial training
            included; below 2, on the validation split.
        learning_rates: Adam rates tried for heads and from-scratch models, chosen on validation.
        backbone_learning_rates: The rates tried instead for the ImageNet strategies' heads (and
            so their fine-tuning, at the head's rate times the factor); empty takes
            ``learning_rates``. A head on a backbone's pooled features and one on a DCGAN trunk's
            flattened map learn at different rates, so a preset that tries one rate per family
            sets both.
        finetune_learning_rate_factor: Fine-tuning runs at the chosen head rate times this.
        max_epochs: Upper bound on epochs per fit.
        patience: Early-stopping patience in epochs (and the epochs before it may stop).
        batch_size: Images per step.
        dropout: Head dropout rate.
        l2: Head L2 weight decay.
        trunk_dropout: Spatial dropout after every conv block of a DCGAN-architecture trunk
            (gan-*, random-*, scratch); it acts where the trunk trains in training mode (scratch):
            frozen and fine-tuned trunks run in inference mode.
        trunk_l2: Weight decay on a DCGAN-architecture trunk's conv kernels (acts where the trunk
            trains: scratch and fine-tuning).
        scratch_width: The width multiplier of scratch's network, as ``gan.width`` (0.25 is
            16-32-64... filters), or null for the discriminator's own. A network trained from
            scratch learns from the labeled images alone, a few hundred of them, where the
            discriminator learned from every unlabeled image: it may need far fewer filters. The
            random-* controls keep the discriminator's width, which is what they control for.
        augment_flip: Random horizontal flips while training (not for digits or text).
        augment_shift: Random shifts by whole pixels, up to this fraction of the side, the rows
            and columns uncovered repeating the edge; 0 is off.
        probe: Linear-probe classifier: logistic (on standardised features), svm (an L2-SVM on
            standardised features), or paper: the DCGAN authors' probe exactly, an L2-SVM on the
            raw pooled features with C among their grid (1e-4 ... 1e-2; transfer.probe_c unused).
        probe_c: Inverse regularisation strengths tried for linear probes.
        probe_solver: How logistic probes are solved: scikit-learn (L-BFGS, exact), keras (Adam on
            mini-batches of the cached features, the same objective; runs on a GPU), or auto:
            keras from 10,000 fitted images of 2,048 features or more on, where L-BFGS takes
            minutes. SVM probes always use scikit-learn.
        probe_shift: The augmentation of every classifier fitted on a frozen trunk's cached
            features (the linear probes, the frozen strategies' heads, and the fine-tuning
            strategies' head phase when it reads cached features): each labeled image's features
            are also taken from copies moved down, up, right and left by every distance from 1
            to this many pixels (edges repeated; 4 copies for 1, 8 for 2), for budgets up to
            2,500 images; 0 is off. Not for the paper's probe.
        ensemble: Members of every network's final model (a deep ensemble): the refit on the whole
            budget is repeated from this many initialisations and shufflings (the first is the
            seed's own, so 1 is the single model), each with the choices validation made, and the
            model predicts the mean of their softmax. Linear probes are convex fits that come out
            the same every time, so they stay one model; so does a model whose refit is off or was
            discarded. It costs this many refits.
        test_shift: Test-time augmentation of every strategy's final model: it predicts the mean
            of its softmax over each image and the image's copies moved down, up, right and left
            by every distance from 1 to this many pixels (the copies of ``probe_shift``), and the
            saved model does the same (its output is the log of that mean, read as logits); 0 is
            off. It costs each prediction 1 + 4 x ``test_shift`` passes.
        probe_storage: How probe features are held in memory: float32, float16 (half the memory;
            logistic probes only, solved by keras, which reads them a batch at a time in float32),
            or auto: float32 where it fits in available memory, else float16.
        bn_images: At most this many real training images re-estimate BatchNorm statistics.
        semisupervised_steps: The semi-supervised GAN strategies' training steps (Salimans et al.
            2016: the classifier is the discriminator of a GAN that keeps training on the
            unlabeled images, see gan-semisupervised). Each step is one batch of unlabeled images,
            one of generated images and one of labeled images; the unlabeled images are passed
            over in a new order each time, and the steps are rounded up to whole passes. A fixed
            schedule: no choice is made on the labels.
        semisupervised_batch_size: Images in each of those three batches.
        semisupervised_learning_rate: Adam's rate (beta_1 0.5, the DCGAN's) for the classifier
            and the generator.
        semisupervised_dropout: The classifier's head dropout there (Salimans et al.'s
            discriminator was heavily dropped out; transfer.dropout is for the other networks).
        semisupervised_unlabeled_weight: The weight of its GAN loss (on the unlabeled and the
            generated images) beside the labeled images' cross-entropy, which weighs 1.
        semisupervised_decay: The last fraction of those steps over which both Adam rates fall
            linearly towards 0 (the authors' code: the last third); 0 keeps them constant.
        semisupervised_images: At most this many unlabeled training images feed it.
        backbone: ImageNet backbone: mobilenet, mobilenet_v2, resnet50 or efficientnet_b0.
        backbone_alpha: MobileNet width multiplier.
        backbone_input_size: Side the images are resized to inside the backbone.
        backbone_weights: imagenet, a weights file, or none.
        gan_metrics: In ``compare``, score the GAN with FID and KID for the report.
        report_pictures: Add what the networks learned to the report: first-layer filters, feature
            maps, a Grad-CAM and a 2-D embedding of each trunk's features.
        embedding: pca, or tsne (slower) for those embeddings.
        gan_discriminator: Which of a GAN run's discriminators seeds the gan-* strategies: last
            (the final epoch's), or best-probe (the epoch whose features train.probe_every's linear
            probe scored best; the last when the run has no probe scores).
        gan_per_seed: In ``compare``, train one GAN per seed, seed ``s``'s at ``train.seed + s``
            (on the same images, with the same test split), and start each seed's gan-* models
            from its own GAN: the paired intervals then include the GAN's run-to-run variation,
            not only the labels' and the classifiers'. It costs ``transfer.seeds`` GANs.
            ``transfer`` refuses it: give it one ``--gan-run`` per seed instead.
        allow_test_overlap: With a GAN run trained on the same data, ``transfer`` tests on the
            images that GAN never saw, and refuses when it cannot; true runs anyway, and the report
            says that the GAN may have seen test images.
        adversarial_training: Train every strategy that trains through pixels on adversarial
            examples made afresh each step: none, fgsm (with a random start, "fast adversarial
            training") or pgd (Madry et al.). Frozen heads then train through the pixels too.
        adversarial_epsilon: Its L-infinity budget, on the [0, 1] pixel scale.
        adversarial_steps: Its PGD steps.
        adversarial_fraction: The share of each batch replaced by adversarial examples.
        robustness: Epsilons (on the [0, 1] pixel scale) at which every trained model is attacked
            on the test images after training; empty is off.
        robustness_method: The attack: pgd or fgsm.
        robustness_steps: PGD steps of that attack.
        robustness_images: At most this many test images are attacked.
        workers: How many models train at once, each in its own process computing on one
            thread: a small model keeps one core busy where two threads barely help, so on a CPU
            two processes train side by side in much less time than one after the other. ``auto``
            takes one per core this process may use (its ``OMP_NUM_THREADS`` or
            ``TF_NUM_INTRAOP_THREADS`` share, where set), at most the models left to train and
            those its free memory holds; 1 on a GPU or under ``train.distribute``, whose one
            process uses the devices fully. 1 trains them in this process, one after the other.
            A model's draw and initialisation depend on its strategy, budget and seed alone,
            whichever process trains it; one thread instead of several may sum floats in another
            order, which now and then moves a test image (one of the main job's 48 models).
    """

    strategies: list[str] = dataclasses.field(default_factory=lambda: [
        name for name, info in STRATEGIES.items() if info.by_default])
    labels_per_class: list[int | str] = dataclasses.field(default_factory=lambda: [10, 100])
    seeds: int = 3
    validation_fraction: float = 0.2
    head: str = "auto"
    refit: bool = True
    cv_folds: int = 5
    learning_rates: list[float] = dataclasses.field(default_factory=lambda: [1e-2, 1e-3])
    backbone_learning_rates: list[float] = dataclasses.field(default_factory=list)
    finetune_learning_rate_factor: float = 0.1
    max_epochs: int = 100
    patience: int = 15
    batch_size: int = 32
    dropout: float = 0.0
    l2: float = 0.0
    trunk_dropout: float = 0.0
    trunk_l2: float = 0.0
    scratch_width: float | None = None
    augment_flip: bool = False
    augment_shift: float = 0.0
    probe: str = "logistic"
    probe_c: list[float] = dataclasses.field(default_factory=lambda: [0.001, 0.01, 0.1, 1.0])
    probe_solver: str = "auto"
    probe_shift: int = 1
    test_shift: int = 0
    ensemble: int = 1
    probe_storage: str = "auto"
    bn_images: int = 10000
    semisupervised_steps: int = 1800
    semisupervised_batch_size: int = 100
    semisupervised_learning_rate: float = 0.0002
    semisupervised_dropout: float = 0.5
    semisupervised_unlabeled_weight: float = 1.0
    semisupervised_decay: float = 0.0
    semisupervised_images: int = 60000
    backbone: str = "mobilenet"
    backbone_alpha: float = 0.25
    backbone_input_size: int = 224
    backbone_weights: str = "imagenet"
    gan_metrics: bool = True
    report_pictures: bool = False
    embedding: str = "pca"
    gan_discriminator: str = "best-probe"
    gan_per_seed: bool = False
    allow_test_overlap: bool = False
    adversarial_training: str = "none"
    adversarial_epsilon: float = 0.1
    adversarial_steps: int = 7
    adversarial_fraction: float = 1.0
    robustness: list[float] = dataclasses.field(default_factory=list)
    robustness_method: str = "pgd"
    robustness_steps: int = 20
    robustness_images: int = 1000
    workers: int | str = "auto"

    def __post_init__(self) -> None:
        names = _strategy_names()
        _check("transfer.embedding", self.embedding, self.embedding in ("pca", "tsne"),
               "pca or tsne")
        for name in self.strategies:
            _check("transfer.strategies", name, name in names, f"some of {', '.join(names)}")
        for budget in self.labels_per_class:
            _check("transfer.labels_per_class", budget,
                   budget == "all" or (isinstance(budget, int) and budget >= 2),
                   "integers >= 2 or 'all'")
        _check("transfer.seeds", self.seeds, self.seeds >= 1, "an integer >= 1")
        _check("transfer.validation_fraction", self.validation_fraction,
               0 < self.validation_fraction < 1, "a fraction in (0, 1)")
        _check("transfer.head", self.head, self.head in ("auto", "gap", "flatten", "pooled"),
               "auto, gap, flatten or pooled")
        _check("transfer.gan_discriminator", self.gan_discriminator,
               self.gan_discriminator in ("last", "best-probe"), "last or best-probe")
        _check("transfer.cv_folds", self.cv_folds, self.cv_folds >= 0,
               "an integer >= 0 (below 2 uses the validation split)")
        for key, rates in (("transfer.learning_rates", self.learning_rates),
                           ("transfer.backbone_learning_rates", self.backbone_learning_rates)):
            for rate in rates:
                _check(key, rate, 0 < rate < 1, "numbers in (0, 1)")
        _check("transfer.finetune_learning_rate_factor", self.finetune_learning_rate_factor,
               0 < self.finetune_learning_rate_factor <= 1, "a number in (0, 1]")
        _check("transfer.max_epochs", self.max_epochs, self.max_epochs >= 1, "an integer >= 1")
        _check("transfer.patience", self.patience, self.patience >= 1, "an integer >= 1")
        _check("transfer.batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1")
        _check("transfer.dropout", self.dropout, 0 <= self.dropout < 1, "a rate in [0, 1)")
        _check("transfer.l2", self.l2, self.l2 >= 0, "a number >= 0")
        _check("transfer.trunk_dropout", self.trunk_dropout, 0 <= self.trunk_dropout < 1,
               "a rate in [0, 1)")
        _check("transfer.trunk_l2", self.trunk_l2, self.trunk_l2 >= 0, "a number >= 0")
        _check("transfer.scratch_width", self.scratch_width, self.scratch_width is None
               or (0 < self.scratch_width <= 16 and round(64 * self.scratch_width) >= 1),
               "null (the discriminator's width) or a width multiplier in (0, 16] giving at "
               "least one filter, e.g. 0.25")
        _check("transfer.augment_shift", self.augment_shift, 0 <= self.augment_shift < 0.5,
               "a fraction in [0, 0.5)")
        _check("transfer.probe", self.probe, self.probe in ("logistic", "svm", "paper"),
               "logistic, svm or paper")
        for c in self.probe_c:
            _check("transfer.probe_c", c, c > 0, "numbers > 0")
        _check("transfer.probe_solver", self.probe_solver,
               self.probe_solver in ("auto", "scikit-learn", "keras"), "auto, scikit-learn or keras")
        _check("transfer.probe_shift", self.probe_shift,
               _is_count(self.probe_shift, 0), "an integer >= 0 (pixels; 0 is off)")
        _check("transfer.ensemble", self.ensemble,
               _is_count(self.ensemble, 1), "an integer >= 1 (1 is a single model)")
        _check("transfer.test_shift", self.test_shift,
               _is_count(self.test_shift, 0), "an integer >= 0 (pixels; 0 is off)")
        _check("transfer.probe_storage", self.probe_storage,
               self.probe_storage in ("auto", "float32", "float16"), "auto, float32 or float16")
        if self.probe_storage == "float16" and (self.probe != "logistic"
                                                or self.probe_solver == "scikit-learn"):
            raise ConfigError("transfer.probe_storage=float16 needs transfer.probe=logistic and "
                              "transfer.probe_solver auto or keras (scikit-learn's solvers copy "
                              "float16 features to float64); use float32 or auto")
        _check("transfer.bn_images", self.bn_images, self.bn_images >= 1, "an integer >= 1")
        _check("transfer.workers", self.workers,
               self.workers == "auto" or _is_count(self.workers, 1),
               "an integer >= 1, or auto (one per core)")
        _check("transfer.semisupervised_steps", self.semisupervised_steps,
               _is_count(self.semisupervised_steps, 1), "an integer >= 1")
        _check("transfer.semisupervised_batch_size", self.semisupervised_batch_size,
               _is_count(self.semisupervised_batch_size, 1), "an integer >= 1")
        _check("transfer.semisupervised_learning_rate", self.semisupervised_learning_rate,
               0 < self.semisupervised_learning_rate < 1, "a number in (0, 1)")
        _check("transfer.semisupervised_dropout", self.semisupervised_dropout,
               0 <= self.semisupervised_dropout < 1, "a rate in [0, 1)")
        _check("transfer.semisupervised_unlabeled_weight", self.semisupervised_unlabeled_weight,
               0 <= self.semisupervised_unlabeled_weight < float("inf"),
               "a finite number >= 0")
        _check("transfer.semisupervised_decay", self.semisupervised_decay,
               0 <= self.semisupervised_decay <= 1, "a fraction in [0, 1]")
        _check("transfer.semisupervised_images", self.semisupervised_images,
               _is_count(self.semisupervised_images, 1), "an integer >= 1")
        _check("transfer.backbone_alpha", self.backbone_alpha, 0 < self.backbone_alpha <= 2,
               "a number in (0, 2]")
        _check("transfer.backbone_input_size", self.backbone_input_size,
               self.backbone_input_size >= 32, "an integer >= 32")
        _check("transfer.adversarial_training", self.adversarial_training,
               self.adversarial_training in ("none", "fgsm", "pgd"), "none, fgsm or pgd")
        _check("transfer.adversarial_epsilon", self.adversarial_epsilon,
               0 < self.adversarial_epsilon <= 1, "a budget in (0, 1] on the [0, 1] pixel scale")
        _check("transfer.adversarial_steps", self.adversarial_steps, self.adversarial_steps >= 1,
               "an integer >= 1")
        _check("transfer.adversarial_fraction", self.adversarial_fraction,
               0 < self.adversarial_fraction <= 1, "a share in (0, 1]")
        for epsilon in self.robustness:
            _check("transfer.robustness", epsilon, 0 <= epsilon <= 1,
                   "epsilons in [0, 1] on the pixel scale, e.g. 0,0.02,0.05,0.1")
        _check("transfer.robustness_method", self.robustness_method,
               self.robustness_method in ("fgsm", "pgd"), "fgsm or pgd")
        _check("transfer.robustness_steps", self.robustness_steps, self.robustness_steps >= 1,
               "an integer >= 1")
        _check("transfer.robustness_images", self.robustness_images, self.robustness_images >= 1,
               "an integer >= 1")

    @property
    def augments(self) -> bool:
        """Whether any augmentation is on."""
        return self.augment_flip or self.augment_shift > 0

    @property
    def trains_through_pixels(self) -> bool:
        """Whether a frozen trunk's features change from step to step: with augmentation or
        adversarial training they are not the same every time, so one set cannot stand for them.
        Augmentation's views are few (its shifts move by whole pixels), and a head can train on the
        cached features of each; adversarial images depend on the model, so a head trains through
        the pixels."""
        return self.augments or self.adversarial_training != "none"


@dataclasses.dataclass
class Config:
    """A whole run's configuration: one typed section per concern.

    Example:
        >>> Config().data.dataset
        'digits'
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    gan: GANConfig = dataclasses.field(default_factory=GANConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    transfer: TransferConfig = dataclasses.field(default_factory=TransferConfig)

    def __post_init__(self) -> None:
        if self.data.split_seed is None:  # resolved once: every later copy keeps this split
            self.data = dataclasses.replace(self.data, split_seed=self.train.seed)
        if self.train.probe_seed is None:  # likewise the GAN probe's images
            self.train = dataclasses.replace(self.train, probe_seed=self.train.seed)
        if self.transfer.gan_per_seed:
            _check("train.seed", self.train.seed, self.train.seed + self.transfer.seeds <= 2**32,
                   f"an integer at most 2**32 - {self.transfer.seeds} with transfer.gan_per_seed "
                   "(seed s's GAN trains at train.seed + s)")

    def to_dict(self) -> dict[str, Any]:
        """Returns the config as plain nested dicts, ready for YAML."""
        return dataclasses.asdict(self)


# Keys that earlier versions accepted but no code ever read. Each names where its job is done now, so
# a config that still sets one fails with a pointer instead of being silently ignored.
RETIRED_KEYS = {
    "data.labels_per_class": "label budgets are set once, in transfer.labels_per_class",
    "data.validation_split": "validation images come from each label budget: "
                             "transfer.validation_fraction; the GAN uses no validation split",
}


# List keys whose empty list means "off".
MAY_BE_EMPTY = {"transfer.robustness", "transfer.backbone_learning_rates"}


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Checks ``value`` against a field annotation, allowing int where float is expected.

    A list field also takes a comma-separated string (``"10,100,all"``), as typed on a command line.
    """
    hint = annotation
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [_list_item(key, part) for part in value.split(",") if part.strip()]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]  # one budget or rate, as typed on a command line
        if not isinstance(value, list) or (not value and key not in MAY_BE_EMPTY):
            raise ConfigError(f"{key}: received {value!r}, expected a non-empty list of "
                              f"{_type_name(typing.get_args(item) or (item,))} (e.g. [1, 2] or 1,2)")
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        _check(key, value, type(None) in options, _type_name(options))
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
    if float in options and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string; every spelling Python reads is a number here.
        number = _float_or_none(value)
        if number is not None:
            return number
    raise ConfigError(f"{key}: received {value!r} ({type(value).__name__}), expected {_type_name(options)}")


def _list_item(key: str, text: str) -> Any:
    """One item of a comma-separated list, read as YAML (``10`` a number, ``all`` a string)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{key}: cannot read {text.strip()!r} in a comma-separated list; "
                          "write plain items, e.g. 10,100,all") from None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _type_name(options: tuple) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    return " or ".join(names.get(o, str(o)) for o in options)


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    listed = ", ".join(prefix + v for v in sorted(valid))
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys: {listed}")


def config_from_dict(raw: dict[str, Any] | None) -> Config:
    """Builds a validated :class:`Config` from nested dicts, as read from YAML.

    Args:
        raw: ``{"data": {...}, "gan": {...}, "train": {...}, "transfer": {...}}``; missing keys take their defaults.

    Returns:
        The validated config.

    Raises:
        ConfigError: On an unknown key, a wrong type or an out-of-range value.

    Example:
        >>> config_from_dict({"train": {"epochs": 3}}).train.epochs
        3
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: received {type(raw).__name__}, expected a mapping of sections "
                          f"({', '.join(_fields(Config))})")
    sections = _fields(Config)
    built = {}
    for name in raw:
        if name not in sections:
            raise _unknown_key(str(name), list(sections))
    hints = typing.get_type_hints(Config)
    for name in sections:
        cls = hints[name]
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: received {values!r}, expected a mapping of keys")
        field_hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if f"{name}.{key}" in RETIRED_KEYS:
                raise ConfigError(f"config key '{name}.{key}' was removed: "
                                  f"{RETIRED_KEYS[f'{name}.{key}']}; delete it from the config")
            if key not in field_hints:
                raise _unknown_key(f"{name}.{key}", list(field_hints))
            kwargs[key] = _coerce(f"{name}.{key}", value, field_hints[key])
        built[name] = cls(**kwargs)
    return Config(**built)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``section.key=value`` into a key path and a YAML-parsed value.

    Example:
        >>> parse_override("gan.latent_dim=64")
        (['gan', 'latent_dim'], 64)
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. gan.latent_dim=64")
    key, _, value = text.partition("=")
    path = key.strip().split(".")
    if len(path) != 2 or not all(path):
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.epochs=5")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return path, parsed


PRESETS_DIR = Path(__file__).parent / "configs"


def presets() -> list[str]:
    """Names of the configs shipped with the package (``gantransfer/configs/*.yaml``)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config file path, or the shipped preset of that name (``digits``, ``fashion_mnist``...).

    Example:
        >>> resolve_config_path("digits").name
        'digits.yaml'
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.suffix and preset.is_file():
        return preset
    raise ConfigError(f"config file {str(path)!r} does not exist; pass an existing YAML file or a "
                      f"preset name ({', '.join(presets())})")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config file (or a preset by name) into nested dicts; one-line errors."""
    path = resolve_config_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: "
                          f"{getattr(error, 'problem', error)}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping of sections, received "
                          f"{type(raw).__name__}")
    return raw or {}


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Loads a YAML config (or the defaults) and applies ``section.key=value`` overrides.

    Args:
        path: A YAML file, or None for the built-in defaults.
        overrides: Strings such as ``"gan.latent_dim=64"``; values are parsed as YAML.

    Returns:
        The validated config.

    Raises:
        ConfigError: If the file is missing or invalid, or any key or value is not allowed.

    Example:
        >>> load_config(None, ["data.dataset=fashion_mnist"]).data.dataset
        'fashion_mnist'
    """
    raw = read_yaml(path) if path is not None else {}
    raw = {name: dict(values) if isinstance(values, dict) else values for name, values in raw.items()}
    for text in overrides:
        (section, key), value = parse_override(text)
        if section not in _fields(Config):
            raise _unknown_key(f"{section}.{key}", [f"{s}.*" for s in _fields(Config)])
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{section}: received {target!r}, expected a mapping of keys")
        target[key] = value
    return config_from_dict(raw)


def save_config(config: Config, path: str | Path) -> None:
    """Writes the resolved config as YAML; :func:`load_config` reads it back to repeat the run."""
    from gantransfer.runs import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False))
