"""The comparison report of a transfer run: results.csv, results.json, report.md and report.html.

The report is built once as a list of small blocks (headings, paragraphs, tables, figures) and then
rendered twice, to Markdown and to HTML, so both files always say the same thing. The HTML file is
self-contained: its CSS is inline, every image is a base64 PNG ``data:`` URI, and a Content Security
Policy forbids the browser from fetching anything. The Markdown file links the same figures, which
are also written as PNG files under ``figures/``.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import yaml
from PIL import Image

from gantransfer.evaluation.results import CSV_COLUMNS, CSV_EXCLUDED, StrategyResult, to_json_safe
from gantransfer.evaluation.robustness import (attacked_epsilons, render_robust_comparison,
                                               robust_comparisons, robustness_summary)
from gantransfer.evaluation.summary import (CONFIDENCE, budget_label, budget_order, budget_sort_key,
                                            comparisons, headline, normalize_budget,
                                            render_comparison, render_flag, sanity_flags,
                                            strategy_order, summarize, verdict)
from gantransfer.registry import FAMILIES, OTHER, STRATEGIES, family_of
from gantransfer.reporting import figures
from gantransfer.runs import atomic_write, atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["CSV_COLUMNS", "to_json_safe", "write_report"]


# --------------------------------------------------------------------------------------------------
# JSON and CSV
# --------------------------------------------------------------------------------------------------

def _csv_value(value: Any) -> str:
    value = to_json_safe(value)
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)  # Shortest text that reads back as the same float.
    return str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """results.csv: the fixed columns, then the other scalar fields that any row has a value for."""
    extra = sorted({key for row in rows for key, value in row.items() if value is not None}
                   - set(CSV_COLUMNS) - set(CSV_EXCLUDED))
    columns = CSV_COLUMNS + extra
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(column)) for column in columns])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Report blocks, rendered to Markdown and to HTML
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Cell:
    text: str
    bold: bool = False
    numeric: bool = False


@dataclasses.dataclass
class _Heading:
    text: str
    level: int = 2


@dataclasses.dataclass
class _Paragraph:
    text: str
    muted: bool = False


@dataclasses.dataclass
class _List:
    items: list[str]
    css_class: str = ""


@dataclasses.dataclass
class _Table:
    header: list[_Cell]
    rows: list[list[_Cell]]
    group_starts: set[int] = dataclasses.field(default_factory=set)  # rows drawn after a rule


@dataclasses.dataclass
class _Image:
    file: str  # relative to the run folder
    png: bytes
    alt: str
    caption: str = ""
    css_class: str = ""


@dataclasses.dataclass
class _Gallery:
    images: list[_Image]


@dataclasses.dataclass
class _Details:
    summary: str
    code: str
    language: str = ""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    """Plain text made literal in Markdown (one line)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


def _md_cell(cell: _Cell) -> str:
    text = _md(cell.text) or " "
    return f"**{text}**" if cell.bold and cell.text else text


def _render_markdown(blocks: list[Any]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, _Heading):
            out.append(f"{'#' * block.level} {_md(block.text)}")
        elif isinstance(block, _Paragraph):
            out.append(f"*{_md(block.text)}*" if block.muted else _md(block.text))
        elif isinstance(block, _List):
            out.append("\n".join(f"- {_md(item)}" for item in block.items))
        elif isinstance(block, _Table):
            lines = ["| " + " | ".join(_md_cell(c) for c in block.header) + " |",
                     "|" + "|".join("---:" if c.numeric else "---" for c in block.header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, (_Image, _Gallery)):
            images = block.images if isinstance(block, _Gallery) else [block]
            out.append("\n\n".join(
                f"![{_md(image.alt)}]({image.file})" + (f"\n\n*{_md(image.caption)}*"
                                                        if image.caption else "")
                for image in images))
        elif isinstance(block, _Details):
            fence = "```"
            while fence in block.code:
                fence += "`"
            out.append(f"<details><summary>{html.escape(block.summary)}</summary>\n\n"
                       f"{fence}{block.language}\n{block.code.rstrip()}\n{fence}\n\n</details>")
    return "\n\n".join(out) + "\n"


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1f2328; line-height: 1.5;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans",
  sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 32px 64px; }
h1 { font-size: 1.75em; margin: 0 0 6px; }
h2 { font-size: 1.3em; margin: 2.1em 0 0.6em; padding-bottom: 4px;
  border-bottom: 1px solid #d0d7de; }
p { margin: 0.5em 0; }
p.muted { color: #57606a; font-size: 0.92em; }
ul { padding-left: 1.4em; }
ul.verdict li, ul.headline li, ul.flags li { margin: 0.35em 0; }
ul.headline li { font-weight: 600; }
ul.flags li { color: #9a6700; }
table { border-collapse: collapse; margin: 10px 0 6px; font-size: 0.92em;
  font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 5px 11px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.best { background: #dafbe1; }
tr.group-start td { border-top: 2px solid #8c959f; }
tbody tr:hover td { background: #f6f8fa; }
tbody tr:hover td.best { background: #c7f0d2; }
figure { margin: 14px 0 18px; }
figure img { display: block; max-width: 100%; height: auto; }
figure img.samples { width: 420px; max-width: 100%; image-rendering: pixelated;
  border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.88em; margin-top: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr));
  gap: 10px 18px; }
.gallery figure { margin: 0; }
details { margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 14px;
  overflow: auto; font-size: 0.85em; line-height: 1.45; }
"""

# The page may load nothing: styles are inline and images are data: URIs.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _html_cell(cell: _Cell, tag: str) -> str:
    classes = " ".join(c for c in ("num" if cell.numeric else "", "best" if cell.bold else "") if c)
    text = html.escape(cell.text)
    if cell.bold and tag == "td":
        text = f"<strong>{text}</strong>"
    return f"<{tag}{f' class={chr(34)}{classes}{chr(34)}' if classes else ''}>{text}</{tag}>"


def _html_image(image: _Image) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    css = f' class="{html.escape(image.css_class)}"' if image.css_class else ""
    caption = f"<figcaption>{html.escape(image.caption)}</figcaption>" if image.caption else ""
    return (f'<figure><img{css} src="data:image/png;base64,{data}" alt="{html.escape(image.alt)}">'
            f"{caption}</figure>")


def _render_html(blocks: list[Any], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, _Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, _Paragraph):
            css = ' class="muted"' if block.muted else ""
            body.append(f"<p{css}>{html.escape(block.text)}</p>")
        elif isinstance(block, _List):
            css = f' class="{html.escape(block.css_class)}"' if block.css_class else ""
            items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
            body.append(f"<ul{css}>{items}</ul>")
        elif isinstance(block, _Table):
            head = "".join(_html_cell(c, "th") for c in block.header)
            rows = []
            for index, row in enumerate(block.rows):
                css = ' class="group-start"' if index in block.group_starts else ""
                rows.append(f"<tr{css}>" + "".join(_html_cell(c, "td") for c in row) + "</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows)
                        + "\n</tbody></table>")
        elif isinstance(block, _Image):
            body.append(_html_image(block))
        elif isinstance(block, _Gallery):
            body.append('<div class="gallery">' + "".join(_html_image(i) for i in block.images)
                        + "</div>")
        elif isinstance(block, _Details):
            body.append(f"<details><summary>{html.escape(block.summary)}</summary>"
                        f"<pre>{html.escape(block.code)}</pre></details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


# --------------------------------------------------------------------------------------------------
# Report content
# --------------------------------------------------------------------------------------------------

def _pct(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:.{digits}f}"


def _params(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def _budget_text(value: Any) -> str:
    return str(normalize_budget(value))


def _slug(name: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "strategy"
    candidate, index = slug, 2
    while candidate in taken:
        candidate, index = f"{slug}_{index}", index + 1
    taken.add(candidate)
    return candidate


def _resolve_context(context: dict[str, Any] | None,
                     results: list[StrategyResult]) -> dict[str, Any]:
    """The context with every key the report reads, defaults filled in."""
    context = dict(context or {})
    dataset = str(context.get("dataset") or "unknown dataset")
    class_names = [str(n) for n in (context.get("class_names") or [])]
    num_classes = context.get("num_classes")
    if not num_classes:
        sizes = [len(r.confusion_matrix) for r in results if r.confusion_matrix]
        sizes += [len(r.per_class_accuracy) for r in results if r.per_class_accuracy]
        num_classes = len(class_names) or (max(sizes) if sizes else 0)
    num_classes = int(num_classes)
    if class_names and len(class_names) != num_classes:
        logger.warning("context has %d class names for num_classes=%d; using class indices where "
                       "names are missing", len(class_names), num_classes)
    class_names = (class_names + [str(i) for i in range(len(class_names), num_classes)])[:num_classes]
    gan = context.get("gan")
    return {
        "dataset": dataset,
        "class_names": class_names,
        "num_classes": num_classes,
        "title": str(context.get("title") or f"Transfer strategies on {dataset}"),
        "gan": dict(gan) if isinstance(gan, dict) else None,
        "gan_per_seed": bool(context.get("gan_per_seed")),
        "config": context.get("config"),
        "skipped": [s for s in (context.get("skipped") or []) if isinstance(s, dict)],
        "notes": [str(n) for n in (context.get("notes") or [])],
        "machine": dict(context["machine"]) if isinstance(context.get("machine"), dict) else None,
        "figures": [f for f in (context.get("figures") or [])
                    if isinstance(f, dict) and f.get("png")],
    }


def _results_table(summary: list[dict[str, Any]]) -> _Table:
    header = [_Cell("Labels/class"), _Cell("Strategy"), _Cell("Test accuracy (%)", numeric=True),
              _Cell("Macro-F1 (%)", numeric=True), _Cell("Seeds", numeric=True)]
    rows, starts = [], set()
    budgets = sorted({r["labels_per_class"] for r in summary}, key=budget_sort_key)
    for budget in budgets:
        group = [r for r in summary if r["labels_per_class"] == budget]
        best_accuracy = max(r["test_accuracy_mean"] for r in group)
        f1_values = [r["macro_f1_mean"] for r in group if r["macro_f1_mean"] is not None]
        best_f1 = max(f1_values) if f1_values else None
        starts.add(len(rows))
        for row in group:
            wins = math.isclose(row["test_accuracy_mean"], best_accuracy, abs_tol=1e-12)
            f1_wins = best_f1 is not None and row["macro_f1_mean"] is not None and math.isclose(
                row["macro_f1_mean"], best_f1, abs_tol=1e-12)
            rows.append([_Cell(_budget_text(budget)), _Cell(row["strategy"], bold=wins),
                         _Cell(_pct(row["test_accuracy_mean"], row["test_accuracy_std"]),
                               bold=wins, numeric=True),
                         _Cell(_pct(row["macro_f1_mean"], row["macro_f1_std"]), bold=f1_wins,
                               numeric=True),
                         _Cell(str(row["n_seeds"]), numeric=True)])
    return _Table(header, rows, starts)


def _costs_table(summary: list[dict[str, Any]], strategies: Sequence[str]) -> _Table:
    header = [_Cell("Strategy"), _Cell("Labels/class"), _Cell("Train time (s)", numeric=True),
              _Cell("Epochs", numeric=True), _Cell("Trainable params", numeric=True),
              _Cell("Total params", numeric=True), _Cell("Chosen on validation"),
              _Cell("Phase kept")]
    rows, starts = [], set()
    for strategy in strategies:
        group = sorted((r for r in summary if r["strategy"] == strategy),
                       key=lambda r: budget_sort_key(r["labels_per_class"]))
        if group:
            starts.add(len(rows))
        for row in group:
            chosen = []
            if row["learning_rates"]:
                chosen.append("learning rate " + ", ".join(f"{v:g}" for v in row["learning_rates"]))
            if row["C_values"]:
                chosen.append("C " + ", ".join(f"{v:g}" for v in row["C_values"]))
            phases = ", ".join(f"{phase} ×{count}" for phase, count in row["phase_kept"].items())
            rows.append([_Cell(strategy), _Cell(_budget_text(row["labels_per_class"])),
                         _Cell("—" if row["train_time_s_mean"] is None
                               else f"{row['train_time_s_mean']:.1f}", numeric=True),
                         _Cell(_number(row["epochs_mean"]), numeric=True),
                         _Cell(_params(row["trainable_params"]), numeric=True),
                         _Cell(_params(row["total_params"]), numeric=True),
                         _Cell("; ".join(chosen) or "—"), _Cell(phases or "—")])
    return _Table(header, rows, starts)


def _skipped_table(results: list[StrategyResult], skipped: list[dict[str, Any]]) -> _Table | None:
    """Strategies skipped as a whole, and records without results, grouped by reason.

    A strategy skipped as a whole that also left skipped records with the same reason is shown
    once, by its records (they say at which budgets).
    """
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for record in results:
        if record.has_results:
            continue
        reason = record.reason or ("no test accuracy recorded" if record.status == "ok"
                                   else "no reason given")
        key = (record.strategy, record.status, reason)
        groups.setdefault(key, []).append(record.labels_per_class)
    rows, shown = [], set()
    for entry in skipped:
        key = (str(entry.get("strategy", "unknown")), "skipped",
               str(entry.get("reason") or "no reason given"))
        if key not in groups and key not in shown:
            shown.add(key)
            rows.append([_Cell(key[0]), _Cell("skipped"), _Cell("every budget"), _Cell(key[2])])
    for (strategy, status, reason), budgets in groups.items():
        counts = Counter(budgets)
        where = ", ".join(f"{b} ({counts[b]} run{'s' if counts[b] != 1 else ''})"
                          for b in sorted(counts, key=budget_sort_key))
        rows.append([_Cell(strategy), _Cell(status), _Cell(where), _Cell(reason)])
    if not rows:
        return None
    header = [_Cell("Strategy"), _Cell("Status"), _Cell("Labels/class"), _Cell("Reason")]
    return _Table(header, rows)


def _strategies_table(strategies: Sequence[str]) -> _Table | None:
    """What each strategy of the run is, from the registry, grouped by family in registry order."""
    order = [*FAMILIES, OTHER]
    ranked = sorted(strategies, key=lambda name: order.index(family_of(name)))  # stable
    rows, starts, previous = [], set(), None
    for name in ranked:
        family = family_of(name)
        if family != previous:
            starts.add(len(rows))
            previous = family
        info = STRATEGIES.get(name)
        rows.append([_Cell(name), _Cell(family),
                     _Cell("not in the strategy registry" if info is None else info.description)])
    if not rows:
        return None
    return _Table([_Cell("Strategy"), _Cell("Family"), _Cell("What it is")], rows, starts)


def _record_notes(results: list[StrategyResult], strategies: Sequence[str]) -> list[str]:
    notes: list[str] = []
    for strategy in strategies:
        counts: Counter[str] = Counter()
        for record in results:
            if record.strategy == strategy:
                counts.update(record.notes)
        for note, count in counts.items():
            notes.append(f"{strategy}: {note}" + (f" ({count} runs)" if count > 1 else ""))
    return notes


def _gan_sample_png(gan: dict[str, Any], key: str = "samples_png",
                    what: str = "sample grid") -> tuple[bytes | None, str | None]:
    """A picture of the GAN run (its sample grid by default) as PNG bytes, or a note saying why it
    is missing."""
    raw = gan.get(key)
    if not raw:
        return None, None
    path = Path(raw)
    if not path.is_file() and not path.is_absolute() and gan.get("run_dir"):
        path = Path(gan["run_dir"]) / path
    if not path.is_file():
        logger.warning("GAN %s not found at %s; the report shows none", what, raw)
        return None, f"The GAN {what} was not found at {raw}."
    try:
        with Image.open(path) as image:
            image.load()
            if image.format == "PNG":
                return path.read_bytes(), None
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return buffer.getvalue(), None
    except OSError as error:
        logger.warning("cannot read the GAN %s %s: %s", what, path, error)
        return None, f"The GAN {what} at {raw} could not be read ({error})."


def _config_text(config: Any) -> str:
    safe = to_json_safe(config)
    try:
        return yaml.safe_dump(safe, sort_keys=False, allow_unicode=True, default_flow_style=False)
    except yaml.YAMLError:
        return json.dumps(safe, indent=2)


def _robustness_blocks(results: list[StrategyResult]) -> list[Any]:
    """Accuracy under attack per strategy, budget and epsilon, its curve, and what pretraining
    does to it; nothing when no model was attacked."""
    rows = robustness_summary(results)
    if not rows:
        return []
    attacked = [r for r in results if r.has_results and r.robust_accuracy]
    attack = next((r.robustness_attack for r in attacked if r.robustness_attack), "the attack")
    trained = sorted({r.adversarial_training for r in attacked if r.adversarial_training})
    blocks: list[Any] = [_Heading("Robustness")]
    said = (f"Every model attacked after training: {attack}; ε on the [0, 1] pixel scale. "
            "ε = 0 is the clean accuracy on the attacked images. ")
    said += (f"Networks trained through the pixels had {'; '.join(trained)}; linear probes did "
             "not." if trained else "No model was trained on adversarial examples.")
    blocks.append(_Paragraph(said))
    epsilons = attacked_epsilons(results)
    header = [_Cell("Labels/class"), _Cell("Strategy")] + [
        _Cell(f"ε = {e:g} (%)", numeric=True) for e in epsilons]
    table_rows, starts = [], set()
    for budget in budget_order(results):
        group = [r for r in rows if r["labels_per_class"] == budget]
        if not group:
            continue
        starts.add(len(table_rows))
        for strategy in dict.fromkeys(r["strategy"] for r in group):
            cells = {r["epsilon"]: r for r in group if r["strategy"] == strategy}
            table_rows.append([_Cell(_budget_text(budget)), _Cell(strategy)] + [
                _Cell(_pct(cells[e]["mean"], cells[e]["std"]) if e in cells else "–",
                      numeric=True) for e in epsilons])
    blocks.append(_Table(header, table_rows, starts))
    largest = budget_order([r for r in attacked])[-1]
    curves = {}
    for row in (r for r in rows if r["labels_per_class"] == largest):
        curves.setdefault(row["strategy"], []).append((row["epsilon"], row["mean"], row["std"]))
    png = figures.robustness_figure(curves, f"Accuracy under attack, {budget_label(largest)}")
    blocks.append(_Image("figures/robustness.png", png, "Accuracy under attack against ε",
                         f"{attack}; mean over seeds, error bars the std, at "
                         f"{budget_label(largest)}."))
    return blocks


def _robust_verdict_blocks(results: list[StrategyResult]) -> list[Any]:
    """The verdict's answer to the course's question: does pretraining make a model more robust?"""
    compared = robust_comparisons(results)
    if not compared:
        return []
    attack = next((r.robustness_attack for r in results if r.robustness_attack), "the attack")
    name = attack.split(" (")[0].split(" on ")[0]
    return [_Paragraph("Does pretraining make a classifier more robust? Each pretrained strategy "
                       "against training from scratch, and each GAN strategy against its "
                       "random-trunk control, by accuracy under attack at the largest ε, paired "
                       "over seeds (see Robustness):"),
            _List([render_robust_comparison(item, name) for item in compared], "robustness")]


def _verdict_blocks(results: list[StrategyResult], compared: list[dict[str, Any]],
                    flags: list[dict[str, Any]], gan_per_seed: bool) -> list[Any]:
    """The headline per budget, the models below raw pixels, then every comparison;
    ``gan_per_seed`` says whether each seed's GAN strategies started from their own GAN."""
    if not compared:
        return [_Paragraph("No model has results yet.")]
    blocks: list[Any] = [_List(headline(results), "headline")]
    if flags:
        blocks.append(_Paragraph("Sanity check: training from scratch or from a GAN trunk should "
                                 "beat logistic regression on raw pixels."))
        blocks.append(_List([render_flag(flag) for flag in flags], "flags"))
    gan_note = ""
    if any(family_of(r.strategy) == "gan" for r in results):
        gan_note = (" The seeds draw the labeled images, initialise the networks and train the "
                    "GAN: each seed's GAN strategies start from its own GAN, so the GAN's "
                    "run-to-run variation is in the intervals." if gan_per_seed else
                    " The seeds draw the labeled images and initialise the networks; the GAN was "
                    "trained once, so its own run-to-run variation is not in the intervals, and a "
                    "GAN strategy's differences are those of this GAN (compare --gan-per-seed, "
                    "or transfer with one --gan-run per seed, gives each seed its own).")
    unsettled = [item for item in compared if item.get("other") is not None
                 and (item["ci_method"] is None or not item["significant"])]
    more_note = (" A difference that is not significant, or has no interval, may be settled by "
                 "more seeds: the same command again with --resume, this folder as --output-dir "
                 "and a larger --seeds trains only the added seeds' models and reports over all "
                 "of them." if unsettled else "")
    blocks.append(_Paragraph(f"Each difference is paired over seeds, with a Student t-interval "
                             f"({100 * CONFIDENCE:.0f}%); it is a win or a loss only when the "
                             f"interval excludes 0.{gan_note}{more_note}", muted=True))
    blocks.append(_List([render_comparison(item) for item in compared], "verdict"))
    blocks.extend(_robust_verdict_blocks(results))
    return blocks


def _devices(machine: dict[str, Any]) -> str:
    """The devices, precision, XLA and replicas of ``run.json``'s machine, in words.

    Example:
        >>> _devices({"cpu_count": 2, "precision": "float32", "xla": False, "replicas": 1})
        '2 CPU cores, float32, no XLA'
        >>> _devices({"gpus": ["cuda:0", "cuda:1"], "devices": ["NVIDIA H200"] * 2,
        ...           "precision": "mixed_bfloat16", "xla": True, "replicas": 2})
        '2 × NVIDIA H200, mixed_bfloat16, XLA, 2 replicas'
        >>> _devices({"devices": ["NVIDIA H200"], "float32_math": "tf32", "precision": "float32",
        ...           "xla": True})
        'NVIDIA H200, float32 (TF32 products), XLA'
    """
    kinds = machine.get("devices") or machine.get("gpus") or []
    if kinds:
        names = sorted(set(kinds))
        parts = [", ".join(f"{kinds.count(n)} × {n}" if kinds.count(n) > 1 else n for n in names)]
    else:
        parts = [_count(machine.get("cpu_count") or 0, "CPU core", "CPU cores")]
    if "precision" in machine:  # older runs recorded the devices only
        precision = machine["precision"]
        if precision == "float32" and machine.get("float32_math") == "tf32":
            precision += " (TF32 products)"  # tensor cores, a 10-bit mantissa: not IEEE float32
        parts += [precision, "XLA" if machine.get("xla") else "no XLA"]
    if (machine.get("replicas") or 1) > 1:
        parts.append(f"{machine['replicas']} replicas")
    return ", ".join(parts)


def _blocks(results: list[StrategyResult], ctx: dict[str, Any], summary: list[dict[str, Any]],
            comparisons: list[dict[str, Any]], flags: list[dict[str, Any]]) -> list[Any]:
    strategies = strategy_order(results)
    ok = [r for r in results if r.has_results]
    blocks: list[Any] = [_Heading(ctx["title"], 1)]
    facts = [f"Dataset: {ctx['dataset']}", _count(ctx["num_classes"], "class", "classes"),
             _count(len(results), "model") + f" ({len(ok)} with results)",
             _count(len({r["strategy"] for r in summary}), "strategy", "strategies") + " with results",
             "labels per class: " + (", ".join(_budget_text(b) for b in budget_order(results))
                                     or "none")]
    machine = ctx["machine"]
    if machine and machine.get("backend"):
        facts.append(f"trained on Keras's {machine['backend']} backend ({_devices(machine)})")
    blocks.append(_Paragraph(" · ".join(facts), muted=True))
    blocks.append(_Paragraph("Accuracies are percentages on the test set; ± is the sample standard "
                             "deviation over seeds; differences are in percentage points.",
                             muted=True))

    blocks.append(_Heading("Verdict"))
    blocks.extend(_verdict_blocks(results, comparisons, flags, ctx["gan_per_seed"]))

    blocks.append(_Heading("Results"))
    if summary:
        blocks.append(_Paragraph("Mean ± std over seeds; the best strategy at each budget is in bold "
                                 "(macro-F1 separately)."))
        blocks.append(_results_table(summary))
    else:
        blocks.append(_Paragraph("No model has results yet."))

    skipped = _skipped_table(results, ctx["skipped"])
    if skipped is not None:
        blocks.append(_Heading("Skipped"))
        blocks.append(_Paragraph("These did not run or gave no results; they are left out of the "
                                 "tables and figures."))
        blocks.append(skipped)

    accuracy_png = figures.accuracy_figure(summary, strategies)
    if accuracy_png is not None:
        blocks.append(_Heading("Accuracy against label budget"))
        blocks.append(_Image("figures/accuracy.png", accuracy_png,
                             "Test accuracy against labels per class",
                             "Mean test accuracy per strategy; error bars are the std over seeds."))

    blocks.extend(_robustness_blocks(results))

    history_records = figures.pick_history_records(results, strategies)
    curves_png = figures.learning_curves_figure(history_records, strategies)
    if curves_png is not None:
        blocks.append(_Heading("Learning curves"))
        left_out = [s for s in strategies if s in {r["strategy"] for r in summary}
                    and s not in history_records]
        caption = ("Train (solid) and validation (dashed) per epoch for the lowest seed at each "
                   "strategy's largest budget.")
        if left_out:
            caption += " No per-epoch history for: " + ", ".join(left_out) + "."
        blocks.append(_Image("figures/learning_curves.png", curves_png, "Learning curves", caption))

    matrices = _confusion_images(ok, strategies, ctx)
    if matrices:
        blocks.append(_Heading("Confusion matrices"))
        blocks.append(_Paragraph("At each strategy's largest budget, summed over seeds, each row "
                                 "(true class) normalised to 100%."))
        blocks.append(_Gallery(matrices))

    gan = ctx["gan"]
    if gan is not None:
        blocks.append(_Heading("GAN samples"))
        facts = [f"{key.replace('_', ' ')}: {value}" for key, value in gan.items()
                 if key not in ("samples_png", "losses_png") and value is not None
                 and not isinstance(value, (dict, list, tuple))]
        if facts:
            blocks.append(_List(facts))
        png, problem = _gan_sample_png(gan)
        if png is not None:
            blocks.append(_Image("figures/gan_samples.png", png, "GAN sample grid",
                                 "Images drawn by the GAN's generator.", css_class="samples"))
        elif problem:
            blocks.append(_Paragraph(problem))
        curves, problem = _gan_sample_png(gan, "losses_png", "training curves")
        if curves is not None:
            blocks.append(_Image("figures/gan_training.png", curves, "GAN training curves",
                                 "The GAN's losses per epoch, and the linear probe's accuracy on "
                                 "its discriminator's features when train.probe_every was on."))
        elif problem:
            blocks.append(_Paragraph(problem))

    pictures = []
    for index, figure in enumerate(ctx["figures"]):
        path = Path(figure["png"])
        if not path.is_file():
            logger.warning("figure %s not found; the report leaves it out", path)
            continue
        pictures.append(_Image(f"figures/learned_{index}_{path.name}", path.read_bytes(),
                               str(figure.get("title", path.stem)),
                               str(figure.get("caption", ""))))
    if pictures:
        blocks.append(_Heading("What the networks learned"))
        blocks.extend(pictures)

    if summary:
        blocks.append(_Heading("Costs"))
        blocks.append(_Paragraph("Means over seeds; hyperparameters and the fine-tuning phase kept "
                                 "were chosen on validation data (×n counts seeds)."))
        blocks.append(_costs_table(summary, strategies))

    described = _strategies_table(strategies)
    if described is not None:
        blocks.append(_Heading("Strategies"))
        blocks.append(described)

    notes = ctx["notes"] + _record_notes(results, strategies)
    if notes:
        blocks.append(_Heading("Notes"))
        blocks.append(_List(notes))

    if ctx["config"]:
        blocks.append(_Heading("Configuration"))
        blocks.append(_Details("Resolved config", _config_text(ctx["config"]), "yaml"))
    return blocks


def _confusion_images(ok: list[StrategyResult], strategies: Sequence[str],
                      ctx: dict[str, Any]) -> list[_Image]:
    num_classes = ctx["num_classes"]
    images, taken = [], set()
    if num_classes < 1:
        return images
    for strategy in strategies:
        records = [r for r in ok if r.strategy == strategy and r.confusion_matrix]
        for budget in sorted({r.labels_per_class for r in records}, key=budget_sort_key,
                             reverse=True):
            at_budget = [r for r in records if r.labels_per_class == budget]
            matrix = figures.normalized_confusion([r.confusion_matrix for r in at_budget],
                                                  num_classes)
            if matrix is None:
                continue
            runs = len(at_budget)
            title = f"{strategy} · {budget_label(budget)}"
            png = figures.confusion_figure(matrix, ctx["class_names"], title)
            images.append(_Image(f"figures/confusion_{_slug(strategy, taken)}.png", png,
                                 f"Confusion matrix of {strategy}",
                                 f"{strategy}, {budget_label(budget)}, {runs} "
                                 f"run{'s' if runs != 1 else ''}; cells in % of the true class."))
            break
    return images


def _check_results(results: Any) -> list[StrategyResult]:
    if not isinstance(results, (list, tuple)):
        raise TypeError(f"write_report takes a list of StrategyResult. Received: "
                        f"{type(results).__name__}")
    for index, record in enumerate(results):
        if not isinstance(record, StrategyResult):
            hint = (" (StrategyResult.from_row(row) reads a row of results.json)"
                    if isinstance(record, dict) else "")
            raise TypeError(f"results[{index}] must be a StrategyResult{hint}. Received: "
                            f"{type(record).__name__}")
    return list(results)


def write_report(results: list[StrategyResult], run_dir: str | Path,
                 context: dict[str, Any] | None = None) -> dict[str, Path]:
    """Writes the comparison report of a set of trained models into ``run_dir``.

    Files written (atomically): ``results.csv`` (one row per result, flat columns),
    ``results.json`` (``context``, ``results``, ``summary``, ``verdict``, ``comparisons`` with
    their confidence intervals, and ``sanity_flags``; NaN becomes ``null``), ``report.md``,
    ``report.html`` (self-contained: inline CSS, images as data URIs) and the figures as PNG files
    under ``figures/`` (linked from ``report.md``).

    Args:
        results: One :class:`~gantransfer.evaluation.results.StrategyResult` per trained model
            (rows are :meth:`StrategyResult.to_row`). Results without a test accuracy, or whose
            ``status`` is not ``"ok"``, are listed with their ``reason`` under "Skipped".
            Strategies are described and coloured by their registry family; names outside the
            registry are shown as family "other".
        run_dir: The folder to write into; created if missing.
        context: Optional keys ``dataset``, ``class_names``, ``num_classes``, ``title``, ``gan``
            (a dict with e.g. ``run_dir``, ``epochs``, ``source_dataset`` and ``samples_png``, the
            path of a sample grid to embed), ``config`` (shown collapsed at the end), ``skipped``
            (``[{"strategy", "reason"}]`` for strategies skipped as a whole), ``notes`` and
            ``machine`` (``gantransfer.runs.machine_description()``: the backend and devices).

    Returns:
        ``{name: path}`` of the four report files, keyed by file name: ``"results.csv"``,
        ``"results.json"``, ``"report.md"`` and ``"report.html"``.

    Raises:
        TypeError: If ``results`` is not a list of :class:`StrategyResult`.

    Example:
        >>> from gantransfer.evaluation.results import StrategyResult
        >>> paths = write_report([StrategyResult("scratch", 10, seed=0, test_accuracy=0.5)],
        ...                      "outputs/example-report", {"dataset": "digits", "num_classes": 10})
        >>> sorted(paths)
        ['report.html', 'report.md', 'results.csv', 'results.json']
        >>> sorted(p.name for p in (paths["report.md"].parent / "figures").iterdir())
        ['accuracy.png']
    """
    results = _check_results(results)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = _resolve_context(context, results)
    summary = summarize(results)
    compared = comparisons(results)
    flags = sanity_flags(results)
    blocks = _blocks(results, ctx, summary, compared, flags)

    for block in blocks:
        for image in block.images if isinstance(block, _Gallery) else (
                [block] if isinstance(block, _Image) else []):
            atomic_write(run_dir / image.file, lambda handle, data=image.png: handle.write(data))

    rows = [result.to_row() for result in results]
    paths = {"results.csv": run_dir / "results.csv"}
    atomic_write_text(paths["results.csv"], _csv_text(rows))

    document = to_json_safe({"context": {**(context or {}), **{k: ctx[k] for k in
                                                              ("dataset", "class_names",
                                                               "num_classes", "title")}},
                             "results": rows, "summary": summary,
                             "verdict": verdict(results), "comparisons": compared,
                             "sanity_flags": flags,
                             "robustness": {"summary": robustness_summary(results),
                                            "comparisons": robust_comparisons(results)}})
    json.dumps(document, allow_nan=False)  # Fails loudly here rather than writing invalid JSON.
    paths["results.json"] = run_dir / "results.json"
    atomic_write_json(paths["results.json"], document)

    paths["report.md"] = run_dir / "report.md"
    atomic_write_text(paths["report.md"], _render_markdown(blocks))
    paths["report.html"] = run_dir / "report.html"
    atomic_write_text(paths["report.html"], _render_html(blocks, ctx["title"]))
    logger.info("Wrote the report of %d models to %s", len(results), paths["report.html"])
    return paths
