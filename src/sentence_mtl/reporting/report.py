"""The report: ``report.pdf`` built from ``results/*.json`` and ``figures/*.png``.

``build`` reads every results file, summarises it (mean, std and number of seeds per group,
with ``experiments.analysis.summarize``), writes the summaries to ``report/data.json`` and compiles
``report/report.typ`` (Typst) into ``report.pdf``. The Typst source types no result: every
number it prints comes from ``data.json``, and so from the result records, except the
published reference values, which come from ``references.PUBLISHED`` through the same file.

Each summarised number in ``data.json`` is a *cell*: ``{"mean", "std", "seeds", "text",
"source": {"file", "where"}}``, where ``where`` selects the records it summarises, so that
``tests/test_report.py`` can recompute every cell from the records and find its text in the PDF.

    python -m sentence_mtl.reporting.report [--results results] [--figures figures] [--output report.pdf]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..config import REPO_ROOT
from ..io import atomic_path, write_json
from ..references import PUBLISHED
from . import claims
from . import robustness
from ..experiments.analysis import majority_floors, without_headline
from .tables import load as load_result, shorten
from .report_sections import (DATA_FACTS, HARDWARE, MODEL, count, published, retrieval, subsets, task1, task2, task3,
                              task4, trained_model)

REPORT_DIR = REPO_ROOT / "report"
TYPST_SOURCE = REPORT_DIR / "report.typ"
DATA_JSON = REPORT_DIR / "data.json"
DEFAULT_PDF = REPO_ROOT / "report.pdf"

STEMS = ("01_sentence_embeddings", "02_multitask_heads", "03_freezing_strategies", "04_training_loop",
         "train_multitask", "05_retrieval_finetuning")
RECORD_KEYS = ("experiment", "task", "strategy", "metric", "value")


# What each figure shows, written with the report (report/figure_captions.json); in the notebooks' order.
FIGURE_CAPTIONS = json.loads((REPORT_DIR / "figure_captions.json").read_text())


def summary_claims(source: Path = TYPST_SOURCE) -> list[str]:
    """The claims the executive summary names (``k.<name>`` in ``report.typ``): the summary is
    printed only when every one exists, otherwise the report says which are missing."""
    import re

    return sorted(set(re.findall(r"\bk\.([a-z0-9_]+)", source.read_text())))


class ReportError(RuntimeError):
    """A results file or folder the report needs is missing or malformed; says which and the fix."""


# --------------------------------------------------------------------------- loading


def load_results(results_dir: str | Path) -> dict[str, list[dict] | None]:
    """Every known results file as a list of records (None when absent); a clear error when unusable."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"Results folder {results_dir} does not exist. Run `make reproduce` "
                          "(or the notebooks) to write results/*.json, or pass --results DIR.")
    loaded = {}
    for stem in STEMS:
        path = results_dir / f"{stem}.json"
        if not path.is_file():
            loaded[stem] = None
            continue
        try:
            records = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReportError(f"{path} is not valid JSON ({e}). Re-run the notebook that writes it "
                              "or restore it with git.") from e
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ReportError(f"{path} must be a JSON list of records (objects), as in docs/design.md.")
        for i, record in enumerate(records):
            missing = [k for k in RECORD_KEYS if k not in record]
            if missing:
                raise ReportError(f"{path}, record {i}: missing keys {missing}. Every record needs "
                                  f"{list(RECORD_KEYS)} (docs/design.md, 'Result records').")
            if not isinstance(record["value"], (int, float)) or isinstance(record["value"], bool):
                raise ReportError(f"{path}, record {i}: value {record['value']!r} is not a number.")
        loaded[stem] = records or None
    if not any(loaded.values()):
        raise ReportError(f"No results in {results_dir}: expected some of "
                          f"{[s + '.json' for s in STEMS]}. Run `make reproduce` first.")
    return loaded




def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (no image library needed)."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ReportError(f"{path} is not a PNG file. Re-run the notebook that writes it.")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def figures(figures_dir: Path, root: Path) -> dict[str, list[dict]]:
    """figures/<prefix>_*.png per notebook, with a caption and a width (% of the text width):
    wide multi-panel figures use the whole width, single plots about two thirds of it."""
    found = {}
    for prefix in ("01", "02", "03", "04", "05", "robustness"):
        found[prefix] = []
        known = list(FIGURE_CAPTIONS)  # the notebooks' order; figures not listed come after, by name
        paths = sorted(figures_dir.glob(f"{prefix}_*.png"),
                       key=lambda p: (known.index(p.stem) if p.stem in known else len(known), p.name))
        for path in paths:
            width, height = png_size(path)
            found[prefix].append({
                "path": "/" + path.resolve().relative_to(root).as_posix(), "name": path.stem,
                "width": 100 if width >= 2 * height or height >= width else 65,  # multi-panel: whole width
                "caption": FIGURE_CAPTIONS.get(path.stem, path.stem[3:].replace("_", " ").capitalize() + ".")})
    return found


def build_data(results_dir: str | Path = REPO_ROOT / "results", figures_dir: str | Path = REPO_ROOT / "figures",
               root: Path = REPO_ROOT) -> dict:
    results = load_results(results_dir)
    figures_dir = Path(figures_dir)
    if not figures_dir.is_dir():
        raise ReportError(f"Figures folder {figures_dir} does not exist. Run `make reproduce` "
                          "(the notebooks write figures/*.png), or pass --figures DIR.")
    seeds = sorted({r["seed"] for records in results.values() for r in records or []
                    if r.get("seed") is not None})
    profiles = sorted({r["profile"] for records in results.values() for r in records or [] if r.get("profile")})
    get = results.get
    return {
        "claims": (named := claims.build(Path(results_dir))),
        "claims_missing": sorted(set(summary_claims()) - set(named)),
        "results_files": [{"file": f"results/{stem}.json", "records": len(records) if records else 0,
                           "present": bool(records)} for stem, records in results.items()],
        "setup": {"model": MODEL["name"], "layers": MODEL["layers"], "dim": MODEL["dim"],
                  "encoder_params": _encoder_params(results), "hardware": HARDWARE,
                  "profiles": ", ".join(profiles) or "?", "seeds": ", ".join(str(s) for s in seeds),
                  "n_seeds": len(seeds),
                  "data": {k: count(v) for k, v in DATA_FACTS.items()}},
        "task1": task1(get("01_sentence_embeddings")) if get("01_sentence_embeddings") else None,
        "task2": task2(get("02_multitask_heads")) if get("02_multitask_heads") else None,
        "task3": task3(without_headline(get("03_freezing_strategies"))),
        "task4": task4(without_headline(get("04_training_loop"))) if get("04_training_loop") else None,
        "trained": trained_model(get("train_multitask"), majority_floors(load_result(Path(results_dir), "03_freezing_strategies") or []))
        if get("train_multitask") else None,
        "retrieval": retrieval(get("05_retrieval_finetuning")) if get("05_retrieval_finetuning") else None,
        "subsets": subsets(results),
        "predictions": predictions(Path(results_dir) / "train_predictions.json"),
        "robustness": robustness.report_data(load_result(Path(results_dir), "robustness")),
        "published": [published(key) for key in PUBLISHED],
        "figures": figures(figures_dir, root),
    }


def predictions(path: Path) -> list[dict] | None:
    """``tools/show_predictions.py``'s sample of the saved model's test predictions, shortened for a table."""
    if not path.is_file():
        return None
    try:
        reports = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is not valid JSON ({e}). Run `make train` again, or remove the file.") from e

    return [{"task": r["task"], "n_test": count(r["n_test"]),
             "examples": [{"text": shorten(e["text"], 110), "gold": e["gold"], "predicted": e["predicted"],
                           "probability": f"{100 * e['probability']:.0f}%", "correct": e["correct"]}
                          for e in r["examples"]],
             "confusions": [{"gold": c["gold"], "predicted": c["predicted"], "count": count(c["count"]),
                             "share": f"{100 * c['share_of_gold']:.1f}%",
                             "example": shorten(c["examples"][0]["text"]) if c["examples"] else ""}
                            for c in r["confusions"]]} for r in reports]


def _encoder_params(results) -> str:
    """Parameters of the encoder: the trainable count of a fully fine-tuned retrieval run."""
    for r in results.get("05_retrieval_finetuning") or []:
        if r["strategy"] == "finetuned_mnrl" and r.get("trainable_params"):
            return f"{r['trainable_params'] / 1e6:.1f}M"
    return "?"


# --------------------------------------------------------------------------- build


def compile_pdf(data: dict, out_pdf: str | Path, root: Path = REPO_ROOT) -> Path:
    """Compile report/report.typ with ``data`` into ``out_pdf`` (a temporary file, then renamed)."""
    import typst

    out_pdf = Path(out_pdf)
    with atomic_path(out_pdf) as tmp:
        try:
            typst.compile(str(TYPST_SOURCE), output=str(tmp), root=str(root),
                          sys_inputs={"data": json.dumps(data)})
        except Exception as e:  # typst raises its own error types with the source location
            raise ReportError(f"Typst could not compile {TYPST_SOURCE}: {e}") from e
    return out_pdf


def build(results_dir: str | Path = REPO_ROOT / "results", figures_dir: str | Path = REPO_ROOT / "figures",
          out_pdf: str | Path = DEFAULT_PDF, data_path: str | Path | None = DATA_JSON) -> Path:
    """Summarise ``results_dir`` into ``data_path`` (if given) and compile the PDF to ``out_pdf``."""
    figures_dir = Path(figures_dir).resolve()
    root = Path(os.path.commonpath([REPO_ROOT, figures_dir]))
    data = build_data(results_dir, figures_dir, root)
    if data_path is not None:
        write_json(data_path, data)
    return compile_pdf(data, out_pdf, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentence_mtl.reporting.report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default=str(REPO_ROOT / "results"), help="folder of results/*.json")
    parser.add_argument("--figures", default=str(REPO_ROOT / "figures"), help="folder of figures/*.png")
    parser.add_argument("--output", default=str(DEFAULT_PDF), help="the PDF to write")
    parser.add_argument("--data", default=str(DATA_JSON), help="where to write the summaries (data.json)")
    args = parser.parse_args(argv)
    try:
        pdf = build(args.results, args.figures, args.output, args.data)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.data} and {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
