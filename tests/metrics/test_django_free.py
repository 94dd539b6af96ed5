from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Import every module and exercise the lazy imports (scipy) too.
SCRIPT = """
import sys
import evaluation.metrics as m
from evaluation.metrics import errors, ranking, report, semantics, significance, slices, trec_files, trec_metrics
from evaluation.metrics import citations
import evaluation.answering as answering
from evaluation.answering import base, extractive, gold, hf_local, judges, openai_compatible, pipeline, prompt
from evaluation.answering import sentences
p = answering.RetrievedPassage(1, 1, "d", "", "B12 levels rise here.", 1.0)
assert answering.ExtractiveGenerator().generate("b12 levels", [p]).claims
assert citations.summarize([citations.AnswerJudgement("q", abstained=False)])["slices"]["all"]["n"] == 1
assert citations.cohen_kappa(["a", "b", "a"], ["a", "b", "b"]) is not None
r = m.evaluate_and_compare({"a": {"q": {"d": 1.0}}, "b": {"q": {"d": 0.5, "e": 1.0}}}, {"q": {"d": 1}}, resamples=20)
assert r.comparisons["b"].cells
leaked = sorted(name for name in sys.modules if name == "django" or name.startswith("django."))
assert not leaked, leaked
print("ok")
"""


def test_metrics_package_never_imports_django():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
