"""Encoding throughput: our DualEncoder.encode against sentence-transformers' encode, side by side.

Same model folder, batch size, maximum length and texts (XQuAD-R sentences, or parallel-qa when
no data directory is set); both produce mean-pooled, normalised embeddings. Prints texts/s and the
agreement of the two outputs.

    python bench/encode_throughput.py [--n 2000] [--batch-size 64] [--max-length 128]
"""

import argparse
import os
import time

import torch

from scaling.data import load_benchmark
from scaling.models.encoder import DualEncoder, EncoderConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="offline:multilingual-e5-small")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    from sentence_transformers import SentenceTransformer, models

    source = "xquad-r" if os.environ.get("SCALING_DATA_DIR") else "parallel-qa:eval"
    bench = load_benchmark(source).single()
    texts = bench.candidates.column("text").to_pylist()[: args.n]
    ours = DualEncoder.from_config(EncoderConfig(model=args.model, max_length=args.max_length,
                                                 query_prefix="", passage_prefix=""))
    path = ours.backbone.name_or_path
    word = models.Transformer(path, max_seq_length=args.max_length)
    st = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean"),
                                      models.Normalize()], device="cpu")
    print(f"{len(texts)} {source} sentences, batch {args.batch_size}, max length {args.max_length}, "
          f"{torch.get_num_threads()} threads, model {path}")
    results = {}
    for name, fn in (("sentence-transformers", lambda: st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)),
                     ("hybrid-scaling", lambda: ours.encode(texts, "passage", batch_size=args.batch_size, device="cpu"))):
        fn()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - start)
        results[name] = out
        print(f"{name:<24}{len(texts) / best:8.1f} texts/s  ({best:.1f} s, best of {args.repeats})")
    cos = (results["sentence-transformers"] * results["hybrid-scaling"]).sum(axis=1)
    print(f"agreement: min cosine {cos.min():.6f}")


if __name__ == "__main__":
    main()
