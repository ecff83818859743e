"""README tables of the benchmark scripts' records (``benchmarks/*.py --record results/<name>.json``):
each compares against a peer measured in the same run."""

from __future__ import annotations


def study_speedups_table(records: list[dict]) -> str:
    """The levers that could shorten notebook 03, and what both together would leave of the run."""
    by_lever = {r["strategy"]: r for r in records}
    lines = ["### Shortening notebook 03 (`results/study_speedups.json`, `benchmarks/study_speedups.py`)", "",
             f"Full fine-tuning steps of the study ({records[0]['config']['n_texts']} AG News texts, batch "
             f"{records[0]['config']['batch_size']}), each lever against the study's loop in the same run.", "",
             "| lever | steps/s | × study's loop | padding share of batch tokens |", "|---|---|---|---|"]
    names = {"study_loop": "study's loop (1 process × 2 threads, random batches)",
             "parallel_seeds": "seeds in parallel (2 processes × 1 thread)",
             "length_grouped": "length-grouped batches (1 process × 2 threads)"}
    for lever, name in names.items():
        r = by_lever[lever]
        lines.append(f"| {name} | {r['value']:.2f} | {r['speedup']:.2f}x | {100 * r['padding_share']:.0f}% |")
    lines += ["", "Applied: length-grouped batches, in the study's loop (`strategy_training.train_steps`) as in "
                  "`training.Trainer`. Not applied: seeds in parallel, because the numbers a run gives depend "
                  "on its thread count, and the run store's spot checks compare runs bit for bit."]
    return "\n".join(lines)


def train_throughput_table(record: dict) -> str:
    """Our training loop against the Hugging Face Trainer, at its default and at its best setting."""
    speed, ratios = record["sentences_per_second"], record["ratio_ours_over"]
    names = {"ours": "ours (length-grouped batches)", "hugging_face_trainer": "Trainer, random batches (default)",
             "hugging_face_trainer_group_by_length": "Trainer, `train_sampling_strategy=\"group_by_length\"`"}
    lines = ["### Training throughput (`benchmarks/train_throughput.py`, `results/train_throughput.json`)", "",
             f"Full fine-tuning, {record['n_texts']} AG News texts, batch {record['batch_size']}, max length "
             f"{record['max_seq_length']}, {record['threads']} threads, median of {record['repeats']} alternated runs in "
             "one process:", "", "| loop | sentences/s | ours × |", "|---|---|---|"]
    for key, name in names.items():
        lines.append(f"| {name} | {speed[key]:.1f} | {'–' if key == 'ours' else f'{ratios[key]:.2f}x'} |")
    return "\n".join(lines)


def int8_table(record: dict) -> str:
    """Our fp32 encoder against int8 and ONNX Runtime variants (``benchmarks/int8_onnx.py``)."""
    rows = record["contenders"]
    names = {"ours_fp32": "ours, PyTorch fp32", "ours_int8_torch": "ours, PyTorch dynamic int8 (notebook 01)",
             "onnx_fp32": "ONNX Runtime fp32", "onnx_int8": "ONNX Runtime dynamic int8, per-tensor scales",
             "onnx_int8_per_channel": "ONNX Runtime dynamic int8, per-channel scales (`--int8`)",
             "onnx_fused_int8_per_channel": "ONNX Runtime, fused graph, dynamic int8, per-channel scales",
             "onnx_attention_int8_per_channel": "ONNX Runtime, fused attention (eager export), dynamic int8, per-channel",
             "onnx_static_int8_per_channel": "ONNX Runtime static int8 (calibrated), per-channel scales"}
    lines = ["### Faster encoding: int8 and ONNX Runtime (`benchmarks/int8_onnx.py`, `results/int8_onnx.json`)", "",
             f"{record['n_texts']:,} STS-B test sentences, batch {record['batch_size']}, {record['threads']} threads, "
             f"median of {record['repeats']} alternated runs in one process; same tokenizer, length-sorted batches, "
             "mean pooling and L2 norm for all; STS-B test Spearman on all 1,379 pairs. This repository's own target: "
             f"at least {record['target_ratio']}x our fp32 with at most {100 * record['max_spearman_drop']:.1f} "
             "points lower Spearman.", "",
             "| encoder | sentences/s | × ours fp32 | Spearman | change | target |", "|---|---|---|---|---|---|"]
    for key, name in names.items():
        if key not in rows:
            continue
        r = rows[key]
        lines.append(f"| {name} | {r['sentences_per_second']:.0f} | {r['ratio_vs_ours_fp32']:.2f}x | "
                     f"{100 * r['spearman']:.2f} | {-100 * r['spearman_drop'] + 0.0:+.2f} | "
                     f"{'–' if key == 'ours_fp32' else 'met' if r['meets_target'] else 'missed'} |")
    if record.get("classifier"):
        lines += ["", classifier_sentence(record["classifier"])]
    return "\n".join(lines)


def classifier_sentence(quality: dict) -> str:
    """Whether ``predict --int8`` / ``serve --int8`` keep the saved classifier's quality (validation)."""
    changes = "; ".join(f"{t} {quality['metric'][t].replace('_', ' ')} {100 * quality['fp32'][t]:.1f} -> "
                        f"{100 * quality['int8'][t]:.1f} ({100 * (quality['int8'][t] - quality['fp32'][t]):+.1f} points, "
                        f"{quality['n'][t]:,} items)" for t in quality["fp32"])
    return (f"The `--int8` path on the saved multi-task model (`{quality['model']}`), validation sets, fp32 -> int8: "
            f"{changes}: {'within' if quality['keeps_quality'] else 'beyond'} the "
            f"{100 * quality['allowance']:.1f}-point allowance, so "
            f"`predict --int8` and `serve --int8` {'keep' if quality['keeps_quality'] else 'do not keep'} its quality.")


CONTAINER_START, CONTAINER_END = "<!-- container:start -->", "<!-- container:end -->"


def container_block(results_dir) -> str:
    """What ``make container-test`` measured (``results/container.json``, written by ``tools/container_test.sh``)."""
    import json
    from pathlib import Path

    path = Path(results_dir) / "container.json"
    if not path.is_file():
        return f"{CONTAINER_START}\nNot measured yet: run `make container-test`.\n{CONTAINER_END}"
    runs = json.loads(path.read_text())
    lines = [CONTAINER_START, "| run | image size | build | whole `make container-test` | base, engine, date |",
             "|---|---|---|---|---|"]
    for kind, name in (("cold", "cold build (`NO_CACHE=1`)"), ("cached", "layers cached")):
        if r := runs.get(kind):
            lines.append(f"| {name} | {r['image_size_mb']:,} MB | {r['build_s']} s | {r['container_test_s']} s | "
                         f"`{r['base']}`, {r['engine']}, {r['cpus']} CPU cores, {r['date']} |")
    return "\n".join([*lines, CONTAINER_END])
