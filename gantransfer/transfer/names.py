"""The strategy names users type, kept free of heavy imports so configs can validate against them."""

STRATEGY_NAMES = (
    "scratch",
    "gan-frozen",
    "gan-finetune",
    "gan-linear-probe",
    "imagenet-frozen",
    "imagenet-finetune",
    "random-frozen",
    "random-linear-probe",
    "pixels-linear",
)

GAN_STRATEGIES = tuple(name for name in STRATEGY_NAMES if name.startswith("gan-"))
IMAGENET_STRATEGIES = tuple(name for name in STRATEGY_NAMES if name.startswith("imagenet-"))
