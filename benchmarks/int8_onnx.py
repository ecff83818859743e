"""int8 that pays? Our fp32 encoder against int8 variants, in one process, on the same texts.

Run: ``python benchmarks/int8_onnx.py [--n 1024] [--batch-size 32] [--repeats 3] [--record results/int8_onnx.json]``
(needs the ``onnx`` extra: ``pip install -e ".[onnx]"``).

Contenders, each encoding STS-B test sentences at the same batch size with the same tokenizer,
length-sorted batches and our mean pooling + L2 norm (only the transformer differs):
- ``ours_fp32``: the PyTorch encoder (the reference of every ratio);
- ``ours_int8_torch``: PyTorch dynamic quantisation (``SentenceEncoder.quantized_int8``, today's ``--int8``);
- ``onnx_fp32``: the backbone exported to ONNX, run by ONNX Runtime;
- ``onnx_int8``: that graph after ONNX Runtime's dynamic quantisation (int8 weights, per tensor);
- ``onnx_int8_per_channel``: the same with per-channel weight scales: ``SentenceEncoder.onnx_int8``,
  the path ``--int8`` of ``embed``, ``predict`` and ``serve`` takes;
- ``onnx_fused_int8_per_channel``: the graph first fused by ONNX Runtime's transformer optimizer
  (LayerNorm and GELU as single operators), then quantised per channel;
- ``onnx_attention_int8_per_channel``: exported with eager attention, so that the optimizer fuses
  each attention block into one operator (and embeddings, LayerNorm, GELU), quantised per channel
  including the attention projections (QAttention);
- ``onnx_static_int8_per_channel``: static quantisation (activation ranges calibrated once on 512
  STS-B training sentences, QDQ format), per-channel weights.
Quality: STS-B test Spearman of each (all 1,379 pairs). Target: at least 1.5x our fp32 at batch 32
with at most 0.5 points lower Spearman (this repository's own target). With ``--multitask-model``
(default ``models/multitask`` when it exists), the saved classifier's validation metrics in fp32 and
through the ``--int8`` path, which says whether ``predict --int8`` and ``serve --int8`` keep quality.
"""

import argparse
import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from sentence_mtl.config import DEFAULT_MODEL
from sentence_mtl.data import DataSource, load_stsb
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.evaluation import cosine_spearman
from sentence_mtl.io import write_json
from sentence_mtl.onnx_int8 import export
from sentence_mtl.throughput import compare_throughput

TARGET_RATIO, MAX_SPEARMAN_DROP = 1.5, 0.005


def onnx_encoder(encoder: SentenceEncoder, model_path: Path, batch_size: int, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        features = encoder.tokenizer(list(texts), truncation=True, max_length=encoder.max_seq_length)
        order = np.argsort([-len(ids) for ids in features["input_ids"]], kind="stable")
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = encoder.tokenizer.pad({k: [features[k][i] for i in idx] for k in features}, return_tensors="np")
            hidden = session.run(None, {k: batch[k].astype(np.int64) for k in
                                        ("input_ids", "attention_mask", "token_type_ids")})[0]
            with torch.no_grad():
                out[idx] = encoder.pool(torch.from_numpy(hidden), torch.from_numpy(batch["attention_mask"])).numpy()
        return out
    return encode


def calibration_reader(encoder: SentenceEncoder, sentences: list[str], batch_size: int):
    """Batches of STS-B *training* sentences for static quantisation's activation ranges."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{k: v.astype(np.int64) for k, v in encoder.tokenizer(
                sentences[i:i + batch_size], padding=True, truncation=True, max_length=encoder.max_seq_length,
                return_tensors="np").items()} for i in range(0, len(sentences), batch_size)])

        def get_next(self):
            return next(self.batches, None)
    return Reader()


def classifier_quality(model_dir: Path, source: DataSource) -> dict:
    """The saved multi-task model's validation metrics, fp32 against the ``--int8`` path."""
    from sentence_mtl.batch_plan import load_training_data
    from sentence_mtl.multitask import MultiTaskModel
    from sentence_mtl.train_config import TrainConfig
    from sentence_mtl.training import evaluate

    model = MultiTaskModel.from_pretrained(model_dir)
    _, val_sets = load_training_data(TrainConfig.from_dict(model.training_config), source)
    scores = evaluate(model, val_sets)
    fp32 = {t: m["benchmark_value"] for t, m in scores.items()}
    model.encoder = model.encoder.onnx_int8()
    int8 = {t: m["benchmark_value"] for t, m in evaluate(model, val_sets).items()}
    return {"model": str(model_dir), "split": "validation", "n": {t: m["n"] for t, m in scores.items()},
            "metric": {t: m["benchmark_metric"] for t, m in scores.items()},
            "fp32": fp32, "int8": int8, "drop": {t: fp32[t] - int8[t] for t in fp32}, "allowance": MAX_SPEARMAN_DROP,
            "keeps_quality": all(fp32[t] - int8[t] <= MAX_SPEARMAN_DROP for t in fp32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="sentences timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, help="write the measurements to this JSON file")
    parser.add_argument("--multitask-model", default="models/multitask", type=Path,
                        help="a saved multi-task model scored on validation in fp32 and int8 (skipped if absent)")
    args = parser.parse_args()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    source = DataSource.resolve(args.data_dir)
    pairs = load_stsb("test", source)
    texts = (pairs.sentences1 + pairs.sentences2)[: args.n]
    ours = SentenceEncoder.from_pretrained(DEFAULT_MODEL)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path, fused_path, fused_int8_path = (
            Path(tmp) / f for f in ("fp32.onnx", "int8.onnx", "fused.onnx", "fused_int8.onnx"))
        export(ours.backbone, ours.tokenizer, fp32_path)
        from onnxruntime.transformers import optimizer

        config = ours.backbone.config
        optimizer.optimize_model(str(fp32_path), model_type="bert", num_heads=config.num_attention_heads,
                                 hidden_size=config.hidden_size).save_model_to_file(str(fused_path))
        # eager attention exports the classic BERT pattern, which the optimizer fuses into one Attention operator
        eager = copy.deepcopy(ours.backbone)
        eager.set_attn_implementation("eager")
        eager_path, attention_path, attention_int8_path = (
            Path(tmp) / f for f in ("eager.onnx", "attention.onnx", "attention_int8.onnx"))
        export(eager, ours.tokenizer, eager_path)
        optimizer.optimize_model(str(eager_path), model_type="bert", num_heads=config.num_attention_heads,
                                 hidden_size=config.hidden_size).save_model_to_file(str(attention_path))
        import onnx

        quantize_dynamic(str(fused_path), str(fused_int8_path), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops: no inferred type
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
        quantize_dynamic(str(attention_path), str(attention_int8_path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        train = load_stsb("train", source)
        static_path = Path(tmp) / "static_int8.onnx"
        quantize_static(str(fp32_path), str(static_path),
                        calibration_reader(ours, (train.sentences1 + train.sentences2)[:512], args.batch_size),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                        calibrate_method=CalibrationMethod.MinMax)
        torch_int8, library_int8 = ours.quantized_int8(), ours.onnx_int8(threads)
        contenders = {
            "ours_fp32": lambda t: ours.encode(t, batch_size=args.batch_size),
            "ours_int8_torch": lambda t: torch_int8.encode(t, batch_size=args.batch_size),
            "onnx_fp32": onnx_encoder(ours, fp32_path, args.batch_size, threads),
            "onnx_int8": onnx_encoder(ours, int8_path, args.batch_size, threads),
            "onnx_int8_per_channel": lambda t: library_int8.encode(t, batch_size=args.batch_size),
            "onnx_fused_int8_per_channel": onnx_encoder(ours, fused_int8_path, args.batch_size, threads),
            "onnx_static_int8_per_channel": onnx_encoder(ours, static_path, args.batch_size, threads),
            "onnx_attention_int8_per_channel": onnx_encoder(ours, attention_int8_path, args.batch_size, threads),
        }
        speed = compare_throughput(contenders, texts, repeats=args.repeats)
        spearman = {name: cosine_spearman(encode(pairs.sentences1), encode(pairs.sentences2), pairs.scores)
                    for name, encode in contenders.items()}
        sizes = {"onnx_fp32": fp32_path.stat().st_size, "onnx_int8": int8_path.stat().st_size,
                 "onnx_int8_per_channel": library_int8.backbone.model_bytes,
                 "onnx_fused_int8_per_channel": fused_int8_path.stat().st_size,
                 "onnx_static_int8_per_channel": static_path.stat().st_size,
                 "onnx_attention_int8_per_channel": attention_int8_path.stat().st_size}
    reference = spearman["ours_fp32"]
    print(f"{len(texts)} STS-B sentences, batch {args.batch_size}, {threads} threads, "
          f"{args.repeats} alternated repeats (median); STS-B test Spearman on {len(pairs.scores)} pairs")
    rows = {}
    for name, s in speed.items():
        ratio, drop = s["ratio_vs_ours_fp32"], reference - spearman[name]
        meets = ratio >= TARGET_RATIO and drop <= MAX_SPEARMAN_DROP
        rows[name] = {"sentences_per_second": s["sentences_per_second"], "ratio_vs_ours_fp32": ratio,
                      "spearman": spearman[name], "spearman_drop": drop, "meets_target": meets,
                      "model_bytes": sizes.get(name)}
        print(f"  {name:24s} {s['sentences_per_second']:7.1f} sentences/s  {ratio:4.2f}x ours fp32  "
              f"Spearman {100 * spearman[name]:.2f} ({-100 * drop:+.2f})" + ("  meets the target" if meets else ""))
    classifier = classifier_quality(args.multitask_model, source) if args.multitask_model.is_dir() else None
    if classifier:
        print(f"{args.multitask_model} on validation, fp32 -> int8: " + ", ".join(
            f"{t} {100 * classifier['fp32'][t]:.2f} -> {100 * classifier['int8'][t]:.2f}" for t in classifier["fp32"]))
    if args.record:
        write_json(args.record, {"n_texts": len(texts), "batch_size": args.batch_size, "threads": threads,
                                 "repeats": args.repeats, "target_ratio": TARGET_RATIO,
                                 "max_spearman_drop": MAX_SPEARMAN_DROP, "contenders": rows,
                                 "classifier": classifier})
        print(f"-> {args.record}")


if __name__ == "__main__":
    main()
