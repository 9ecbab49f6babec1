"""DCGAN: builders, the ``keras.Model`` with its train step, checkpoints, callbacks (the linear probe
of the discriminator's features among them) and training."""

from gantransfer.gan.callbacks import (CollapseWatch, GANCheckpoint, HistoryCSV, LossPlot,
                                       NonFiniteGuard, SampleGrid, Throughput)
from gantransfer.gan.checkpoint import (latest_checkpoint, read_checkpoint, restore_checkpoint,
                                        save_checkpoint)
from gantransfer.gan.dcgan import DCGAN
from gantransfer.gan.models import build_discriminator, build_generator, spatial_plan
from gantransfer.gan.probe import DiscriminatorProbe
from gantransfer.gan.semisupervised import SemiSupervisedBatches, SemiSupervisedGAN
from gantransfer.gan.train import TrainGanResult, build_dcgan, train_gan

__all__ = [
    "CollapseWatch", "DCGAN", "DiscriminatorProbe", "GANCheckpoint", "HistoryCSV", "LossPlot", "NonFiniteGuard", "SampleGrid",
    "SemiSupervisedBatches", "SemiSupervisedGAN", "Throughput",
    "TrainGanResult", "build_dcgan", "build_discriminator", "build_generator", "latest_checkpoint",
    "read_checkpoint", "restore_checkpoint", "save_checkpoint", "spatial_plan", "train_gan",
]
