"""Translation throughput: sentences/s of the Translator (what each shard of jobs/translate.py runs).

English sentences of parallel-qa (or XQuAD-R when SCALING_DATA_DIR is set) into one target
language, greedy decoding, after one warm-up batch. The default model is a tiny random
NLLB-shaped one built on the spot (CPU, nothing downloaded: the number measures the harness's
overhead, not a real model); on a GPU pass a real checkpoint:

    python bench/translate_throughput.py [--model facebook/nllb-200-distilled-600M] [--target sw]
        [--n 512] [--batch-size 64] [--max-new-tokens 128] [--device cuda] [--dtype float16]
"""

import argparse
import os
import tempfile
import time

import torch

from scaling.data.sources import load_corpus
from scaling.translate.model import ModelSettings, Translator
from scaling.translate.tiny import build_tiny_translator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tiny", help="a checkpoint name or folder; 'tiny' builds a random one")
    p.add_argument("--target", default="sw")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    args = p.parse_args()
    source = "xquad-r" if os.environ.get("SCALING_DATA_DIR") else "parallel-qa:train"
    corpus = load_corpus(source, languages=["en"])
    t = corpus.table
    texts = list(dict.fromkeys(t.column("query").to_pylist() + t.column("passage").to_pylist()))[: args.n]
    model = args.model
    if model == "tiny":
        model = str(build_tiny_translator(tempfile.mkdtemp(prefix="tiny-nllb-"), texts, ["eng_Latn", "swh_Latn"],
                                          d_model=64, layers=2))
    tr = Translator(ModelSettings(name=model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                  num_beams=args.num_beams, device=args.device, dtype=args.dtype))
    tr.translate(texts[: args.batch_size], "en", args.target)  # warm-up
    if tr.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = tr.translate(texts, "en", args.target)
    if tr.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    words = sum(len(o.split()) for o in out)
    print(f"{len(texts)} {source} sentences en->{args.target}, model {args.model}, device {tr.device} ({tr.dtype}), "
          f"batch {args.batch_size}, max new tokens {args.max_new_tokens}, beams {args.num_beams}, "
          f"{torch.get_num_threads()} threads")
    print(f"{len(texts) / seconds:.1f} sentences/s ({seconds:.2f} s, {words} output words)")


if __name__ == "__main__":
    main()
