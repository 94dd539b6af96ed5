"""Probe: does a fresh-head MiniLM cross-encoder learn from SciFact *train* labels within a CPU budget?

Why this exists: the app's reranker recipe (a one-logit head on the base bi-encoder, ``train_cross_encoder``) stays at
the constant predictor's loss for a CPU-sized run. This script varies one thing at a time on the bare
``CrossEncoderTrainer`` (no app code in the loop, so a failure is the recipe's, not the app's): 60 train queries are
held out (seeded), the rest give (query, positive, BM25 negatives from rank ``RMIN``) rows, and the held-out queries'
BM25 top 20 are reranked. nDCG@10 of that vs BM25's own order. Test qrels are not read.

Env (one run per configuration): STEPS (100), LR (5e-5), HEAD_LR (0: same as LR; else the pooler + classifier's),
MAXLEN (128), RMIN (10), NNEG (3), BS (16), LOSS (bce | lambda | mnrl: in-batch negatives), MEANPOOL (1: mean-pooled
Dense head, the bi-encoder's own pooling, instead of the CLS pooler). Each run merges its row into
``bench/results/reranker_probe.json``.

Run: STEPS=100 LOSS=lambda BS=4 .venv/bin/python bench/reranker_probe.py
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from sentence_transformers import CrossEncoder  # noqa: E402
from sentence_transformers.cross_encoder import losses  # noqa: E402
from sentence_transformers.cross_encoder.trainer import CrossEncoderTrainer  # noqa: E402
from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from workbench.retrieval.bm25 import build_bm25  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402

KNOBS = {"STEPS": "100", "LR": "5e-5", "HEAD_LR": "0", "MAXLEN": "128", "RMIN": "10", "NNEG": "3", "BS": "16"}
KNOBS |= {"LOSS": "bce", "MEANPOOL": ""}
DEPTH = 20
HELD_OUT = 60


def knob(name: str) -> str:
    return os.environ.get(name, KNOBS[name])


def build_model(maxlen: int) -> CrossEncoder:
    if not knob("MEANPOOL"):
        return CrossEncoder(str(base_model_path()), num_labels=1, max_length=maxlen, local_files_only=True)
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    tf = Transformer(str(base_model_path()), transformer_task="feature-extraction", max_seq_length=maxlen)
    head = Dense(384, 1, activation_function=torch.nn.Identity(), module_output_name="scores")
    return CrossEncoder(modules=[tf, Pooling(384, "mean"), head])


def main() -> None:
    torch.set_num_threads(2)
    steps, lr, head_lr = int(knob("STEPS")), float(knob("LR")), float(knob("HEAD_LR"))
    maxlen, rmin, nneg, bs, loss_name = (
        int(knob("MAXLEN")),
        int(knob("RMIN")),
        int(knob("NNEG")),
        int(knob("BS")),
        knob("LOSS"),
    )
    ids, texts = load_corpus()
    text_of = dict(zip([str(i) for i in ids.tolist()], texts, strict=True))
    queries, qrels = load_queries(), load_qrels("train")
    bm = build_bm25(ids, texts)

    def top(q: str, k: int) -> tuple[list[str], np.ndarray]:
        rows, scores = bm.search(queries[q], k)
        return [str(r) for r in rows.tolist()], scores

    qids = sorted(qrels)
    random.Random(0).shuffle(qids)
    held, train = qids[:HELD_OUT], qids[HELD_OUT:]
    pairs: dict[str, list] = {"query": [], "doc": [], "label": []}
    lists: dict[str, list] = {"query": [], "docs": [], "labels": []}
    firsts: dict[str, list] = {"query": [], "positive": []}
    for q in train:
        cand, _ = top(q, 60)
        pos = [d for d in qrels[q] if qrels[q][d] > 0]
        negs = [d for d in cand[rmin:] if d not in qrels[q]][:nneg]
        for d, label in [(d, 1.0) for d in pos] + [(d, 0.0) for d in negs]:
            pairs["query"].append(queries[q])
            pairs["doc"].append(text_of[d])
            pairs["label"].append(label)
        lists["query"].append(queries[q])
        lists["docs"].append([text_of[d] for d in pos + negs])
        lists["labels"].append([1.0] * len(pos) + [0.0] * len(negs))
        firsts["query"].append(queries[q])
        firsts["positive"].append(text_of[pos[0]])
    model = build_model(maxlen)
    if loss_name == "bce":
        dataset, loss = (
            Dataset.from_dict(pairs),
            losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(nneg))),
        )
    elif loss_name == "mnrl":
        dataset, loss = Dataset.from_dict(firsts), losses.MultipleNegativesRankingLoss(model, num_negatives=nneg)
    elif loss_name == "lambda":
        dataset, loss = Dataset.from_dict(lists), losses.LambdaLoss(model)
    else:
        sys.exit(f"LOSS must be bce, lambda or mnrl (got {loss_name!r})")
    args = CrossEncoderTrainingArguments(
        output_dir=str(ROOT / "bench" / ".cache" / "reranker-probe"),
        max_steps=steps,
        per_device_train_batch_size=bs,
        learning_rate=lr,
        warmup_steps=0.1,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=0,
        use_cpu=True,
    )
    optimizers: tuple = (None, None)
    if head_lr:
        from transformers import get_linear_schedule_with_warmup

        # The fresh parts: BERT's pooler and classifier, or the mean-pooled variant's Dense (module 2).
        is_head = lambda n: ".pooler." in n or ".classifier." in n or n.startswith("2.")  # noqa: E731
        named = list(model.named_parameters())
        opt = torch.optim.AdamW(
            [{"params": [p for n, p in named if not is_head(n)], "lr": lr},
             {"params": [p for n, p in named if is_head(n)], "lr": head_lr}],
            weight_decay=0.01,
        )  # fmt: skip
        optimizers = (opt, get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, optimizers=optimizers)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    run, base = {}, {}
    for q in held:
        cand, scores = top(q, DEPTH)
        predicted = model.predict([(queries[q], text_of[d]) for d in cand], batch_size=32)
        run[q] = {d: float(x) for d, x in zip(cand, predicted, strict=True)}
        base[q] = {d: float(x) for d, x in zip(cand, scores, strict=True)}
    evaluator = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in held}, {"ndcg_cut.10"})

    def ndcg(r: dict) -> float:
        return round(float(np.mean([v["ndcg_cut_10"] for v in evaluator.evaluate(r).values()])), 4)

    config = {k: knob(k) for k in KNOBS}
    row = {
        "config": config,
        "train_seconds": round(train_s),
        "rerank_ndcg@10": ndcg(run),
        "bm25_ndcg@10": ndcg(base),
        "loss_every_10_steps": [round(x["loss"], 3) for x in trainer.state.log_history if "loss" in x],
        "load_average_at_end": os.getloadavg()[0],
    }
    out = ROOT / "bench" / "results" / "reranker_probe.json"
    previous = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    runs = [r for r in previous.get("runs", []) if r["config"] != config] + [row]
    write_result(
        "reranker_probe",
        {
            "benchmark": "reranker_probe",
            "machine": machine_info(),
            "held_out": f"{HELD_OUT} SciFact train queries (seeded), BM25 top {DEPTH} reranked",
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
