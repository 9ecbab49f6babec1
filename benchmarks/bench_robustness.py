"""Does GAN pretraining, ImageNet pretraining or adversarial training make a classifier robust?

From one GAN run (for instance ``OUTPUT_DIR/gan`` of ``bench_fashion_mnist.sh``), this script trains
scratch, gan-finetune and imagenet-finetune undefended, and scratch and gan-finetune with PGD
adversarial training, on the same labeled images (same budget and seeds), in this one process. Then
it attacks every model on the same test images with FGSM and PGD at each epsilon
(``gantransfer attack``'s code), and prints:

- accuracy under each attack per strategy and defence, mean ± std over seeds;
- what adversarial training buys at the largest epsilon under PGD, and the clean accuracy it costs,
  paired over seeds with 95% Student t-intervals;
- what GAN and ImageNet pretraining do to robustness against scratch, paired the same way.

It writes ``robustness.png`` (accuracy under PGD against epsilon, one line per model kind) and the
course's picture for the undefended and the defended gan-finetune (seed 0) into OUTPUT_DIR.

Usage:
    python benchmarks/bench_robustness.py GAN_RUN OUTPUT_DIR [--seeds 3] [--labels-per-class 100]
        [--epsilons 0,0.02,0.05,0.1] [--pgd-steps 20] [--images 1000]
        [--adversarial-epsilon 0.1] [--adversarial-steps 7] [--config fashion_mnist]
        [--set KEY=VALUE ...] [--train-only undefended|PGD-trained]

Each defence trains in its own run folder, OUTPUT_DIR/undefended and OUTPUT_DIR/PGD-trained, and
an interrupted one resumes: the models it finished are kept. ``--train-only`` trains one of them
and stops, so that two processes can train both at once; ``--no-train`` attacks the defences that
have finished and trains nothing. Each model's attack is kept in its own folder and read back when
the script runs again with the same attack on the same images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gantransfer as gt
from gantransfer.evaluation.results import StrategyResult
from gantransfer.evaluation.summary import paired_interval
from gantransfer.reporting.figures import robustness_figure

UNDEFENDED = ["scratch", "gan-finetune", "imagenet-finetune"]
DEFENDED = ["scratch", "gan-finetune"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gan_run", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels-per-class", default="100")
    parser.add_argument("--epsilons", default="0,0.02,0.05,0.1")
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--adversarial-epsilon", type=float, default=0.1)
    parser.add_argument("--adversarial-steps", type=int, default=7)
    parser.add_argument("--strategies", default=",".join(UNDEFENDED),
                        help="undefended strategies; the defended ones are those of "
                             f"{', '.join(DEFENDED)} among them")
    parser.add_argument("--config", default="fashion_mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--train-only", choices=["undefended", "PGD-trained"])
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    epsilons = [float(e) for e in args.epsilons.split(",")]
    undefended = args.strategies.split(",")
    defended = [s for s in DEFENDED if s in undefended]
    common = [*args.overrides, f"transfer.labels_per_class={args.labels_per_class}",
              f"transfer.seeds={args.seeds}", "transfer.gan_metrics=false"]
    runs = {
        "undefended": (undefended, []),
        "PGD-trained": (defended, ["transfer.adversarial_training=pgd",
                                   f"transfer.adversarial_epsilon={args.adversarial_epsilon}",
                                   f"transfer.adversarial_steps={args.adversarial_steps}"]),
    }
    models: dict[tuple[str, str], dict[int, str]] = {}  # (strategy, defence) -> seed -> file
    clean: dict[tuple[str, str], dict[int, float]] = {}
    dataset = None
    for defence, (strategies, settings) in runs.items():
        if args.train_only not in (None, defence):
            continue
        config = gt.load_config(args.config, [*common, *settings,
                                              f"transfer.strategies={','.join(strategies)}"])
        dataset = config.data.dataset
        started = time.perf_counter()
        folder = args.output_dir / defence
        if args.no_train and not (folder / "results.json").is_file():
            continue
        if (folder / "results.json").is_file():  # trained already (perhaps by --train-only)
            rows = json.loads((folder / "results.json").read_text())["results"]
            results = [StrategyResult.from_row(row) for row in rows]
        else:
            results = gt.transfer(config, folder, discriminator=args.gan_run, verbose=False,
                                  resume=(folder / "config.yaml").is_file()).results
        print(f"{defence}: {len(results)} models in "
              f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
        for r in results:
            if r.has_results and r.model_file:
                models.setdefault((r.strategy, defence), {})[r.seed] = r.model_file
                clean.setdefault((r.strategy, defence), {})[r.seed] = r.test_accuracy
    if args.train_only:
        return

    attacks = {"FGSM": gt.AttackSettings("fgsm"),
               f"PGD-{args.pgd_steps}": gt.AttackSettings("pgd", steps=args.pgd_steps)}
    scores: dict[tuple[str, str, str], dict[int, dict[float, float]]] = {}
    started = time.perf_counter()
    for (strategy, defence), files in models.items():
        for name, settings in attacks.items():
            for seed, file in files.items():
                folder = args.output_dir / "attacks" / f"{strategy}-{defence}-{name}-{seed}"
                points = _kept_attack(folder, file, settings, args.images, epsilons)
                if points is None:
                    points = [p.to_row() for p in gt.attack_model(
                        file, dataset=dataset, epsilons=epsilons, settings=settings,
                        images=args.images, examples=0, overwrite=True, out_dir=folder).points]
                scores.setdefault((strategy, defence, name), {})[seed] = {
                    p["epsilon"]: p["accuracy"] for p in points}
    print(f"attacks: {(time.perf_counter() - started) / 60:.1f} min on {args.images} test images "
          "per model", flush=True)

    largest = max(epsilons)
    print("\n| strategy | defence | attack | " + " | ".join(f"ε = {e:g}" for e in epsilons) + " |")
    print("|---|---|---|" + "---:|" * len(epsilons))
    for (strategy, defence, name), by_seed in scores.items():
        cells = []
        for e in epsilons:
            values = [100 * v[e] for v in by_seed.values()]
            spread = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.1f}{spread}")
        print(f"| {strategy} | {defence} | {name} | " + " | ".join(cells) + " |")

    pgd = f"PGD-{args.pgd_steps}"
    print(f"\nPaired over seeds, 95% Student t-intervals, under {pgd} at ε = {largest:g}:")
    for strategy in defended:
        plain = {s: v[largest] for s, v in scores.get((strategy, "undefended", pgd), {}).items()}
        trained = {s: v[largest] for s, v in scores.get((strategy, "PGD-trained", pgd), {}).items()}
        print(paired_line(f"{strategy}: PGD training, accuracy under attack", trained, plain))
        print(paired_line(f"{strategy}: PGD training, clean accuracy",
                          clean.get((strategy, "PGD-trained"), {}),
                          clean.get((strategy, "undefended"), {})))
    for defence in runs:
        base = {s: v[largest] for s, v in scores.get(("scratch", defence, pgd), {}).items()}
        for strategy in (s for s in undefended if s != "scratch"):
            other = {s: v[largest] for s, v in scores.get((strategy, defence, pgd), {}).items()}
            if base and other:
                print(paired_line(f"{strategy} vs scratch ({defence}), accuracy under attack",
                                  other, base))

    curves = {f"{strategy} ({defence})": [
        (e, float(np.mean([v[e] for v in by_seed.values()])),
         float(np.std([v[e] for v in by_seed.values()], ddof=1)) if len(by_seed) > 1 else None)
        for e in epsilons] for (strategy, defence, name), by_seed in scores.items() if name == pgd}
    figure = args.output_dir / "robustness.png"
    figure.write_bytes(robustness_figure(curves, f"Accuracy under {pgd}, "
                                                 f"{args.labels_per_class} labels/class"))
    print(f"\nfigure: {figure}")
    for defence in runs:
        file = models.get(("gan-finetune", defence), {}).get(0)
        if file:
            shown = gt.attack_model(file, dataset=dataset, epsilons=[largest],
                                    settings=attacks[pgd], images=64, examples=4, overwrite=True,
                                    out_dir=args.output_dir / f"picture-{defence}")
            print(f"picture ({defence} gan-finetune): {shown.files.get('examples')}")


def _kept_attack(folder: Path, model: str, settings: gt.AttackSettings, images: int,
                 epsilons: list[float]) -> list[dict] | None:
    """The points of an earlier run of the same attack on the same model, or None."""
    try:
        kept = json.loads((folder / "attack.json").read_text())
    except (OSError, ValueError):
        return None
    same = (kept["model"] == str(model) and kept["attack"]["description"] == settings.describe()
            and kept["images"] == images
            and sorted(p["epsilon"] for p in kept["points"]) == sorted(epsilons))
    return kept["points"] if same else None


def paired_line(label: str, first: dict[int, float], second: dict[int, float]) -> str:
    """``label: +x points [low, high] (a vs b)``, paired over the seeds both have."""
    seeds = sorted(set(first) & set(second))
    if not seeds:
        return f"{label}: no paired seeds"
    differences = [100 * (first[s] - second[s]) for s in seeds]
    interval = paired_interval(differences)
    shown = "n/a" if interval is None else f"[{interval[0]:+.1f}, {interval[1]:+.1f}]"
    return (f"{label}: {np.mean(differences):+.1f} points {shown} "
            f"({100 * np.mean([first[s] for s in seeds]):.1f}% vs "
            f"{100 * np.mean([second[s] for s in seeds]):.1f}%, {len(seeds)} seeds)")


if __name__ == "__main__":
    main()
