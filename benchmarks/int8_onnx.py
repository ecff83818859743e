"""int8 that pays? Our fp32 encoder against int8 variants, in one process, on the same texts.

Run: ``python benchmarks/int8_onnx.py [--n 1024] [--batch-size 32] [--repeats 3] [--record results/int8_onnx.json]``
(needs the ``onnx`` extra: ``pip install -e ".[onnx]"``).

Contenders, each encoding STS-B test sentences at the same batch size with the same tokenizer,
length-sorted batches and our mean pooling + L2 norm (only the transformer differs):
- ``ours_fp32``: the PyTorch encoder (the reference of every ratio);
- ``ours_int8_torch``: PyTorch dynamic quantisation (``SentenceEncoder.quantized_int8``, today's ``--int8``);
- ``onnx_fp32``: the backbone exported to ONNX, run by ONNX Runtime;
- ``onnx_int8``: that graph after ONNX Runtime's dynamic quantisation (int8 weights, per tensor);
- ``onnx_int8_per_channel``: the same with per-channel weight scales;
- ``onnx_fused_int8_per_channel``: the graph first fused by ONNX Runtime's transformer optimizer
  (attention, LayerNorm and GELU as single operators), then quantised per channel.
Quality: STS-B test Spearman of each (all 1,379 pairs). Target: at least 1.5x our fp32 at batch 32
with at most 0.5 points lower Spearman (this repository's own target).
"""

import argparse
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
from sentence_mtl.throughput import compare_throughput

TARGET_RATIO, MAX_SPEARMAN_DROP = 1.5, 0.005


def export_backbone(encoder: SentenceEncoder, path: Path) -> None:
    batch = encoder.tokenize(["an example sentence to trace", "another"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}

    class Backbone(torch.nn.Module):  # a plain tensor output for the exporter
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

    torch.onnx.export(Backbone(encoder.backbone).eval(), tuple(batch[n] for n in names), str(path),
                      input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                      opset_version=17, dynamo=False)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="sentences timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", default=None, help="write the measurements to this JSON file")
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pairs = load_stsb("test", DataSource.resolve(args.data_dir))
    texts = (pairs.sentences1 + pairs.sentences2)[: args.n]
    ours = SentenceEncoder.from_pretrained(DEFAULT_MODEL)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path, int8_pc_path, fused_path, fused_int8_path = (
            Path(tmp) / f for f in ("fp32.onnx", "int8.onnx", "int8_pc.onnx", "fused.onnx", "fused_int8.onnx"))
        export_backbone(ours, fp32_path)
        from onnxruntime.transformers import optimizer

        config = ours.backbone.config
        optimizer.optimize_model(str(fp32_path), model_type="bert", num_heads=config.num_attention_heads,
                                 hidden_size=config.hidden_size).save_model_to_file(str(fused_path))
        import onnx

        quantize_dynamic(str(fused_path), str(fused_int8_path), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops: no inferred type
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
        quantize_dynamic(str(fp32_path), str(int8_pc_path), weight_type=QuantType.QInt8, per_channel=True)
        torch_int8 = ours.quantized_int8()
        contenders = {
            "ours_fp32": lambda t: ours.encode(t, batch_size=args.batch_size),
            "ours_int8_torch": lambda t: torch_int8.encode(t, batch_size=args.batch_size),
            "onnx_fp32": onnx_encoder(ours, fp32_path, args.batch_size, threads),
            "onnx_int8": onnx_encoder(ours, int8_path, args.batch_size, threads),
            "onnx_int8_per_channel": onnx_encoder(ours, int8_pc_path, args.batch_size, threads),
            "onnx_fused_int8_per_channel": onnx_encoder(ours, fused_int8_path, args.batch_size, threads),
        }
        speed = compare_throughput(contenders, texts, repeats=args.repeats)
        spearman = {name: cosine_spearman(encode(pairs.sentences1), encode(pairs.sentences2), pairs.scores)
                    for name, encode in contenders.items()}
        sizes = {"onnx_fp32": fp32_path.stat().st_size, "onnx_int8": int8_path.stat().st_size,
                 "onnx_int8_per_channel": int8_pc_path.stat().st_size,
                 "onnx_fused_int8_per_channel": fused_int8_path.stat().st_size}
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
    if args.record:
        write_json(args.record, {"n_texts": len(texts), "batch_size": args.batch_size, "threads": threads,
                                 "repeats": args.repeats, "target_ratio": TARGET_RATIO,
                                 "max_spearman_drop": MAX_SPEARMAN_DROP, "contenders": rows})
        print(f"-> {args.record}")


if __name__ == "__main__":
    main()
