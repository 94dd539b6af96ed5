"""manage.py evaluate: the same service from the shell, a table on stdout, JSON and CSV files."""

from __future__ import annotations

import csv
import io
import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from evaluation.models import EvalRun
from workbench.errors import WorkbenchError
from workbench.services import batch_search, indexes

pytestmark = pytest.mark.django_db


def test_evaluate_command_prints_a_table_and_writes_files(built, tiny_cross_encoder_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, index = built
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "evaluate", "--project", project.slug, "--tag", "test", "--index", str(index.pk), "--mode", "dense,bm25",
        "--k", "20", "--resamples", "500", "--json", str(tmp_path / "out.json"), "--csv", str(tmp_path / "out.csv"),
        stdout=out, stderr=err,
    )  # fmt: skip
    text = out.getvalue()
    run = EvalRun.objects.get()
    assert f"Evaluation #{run.pk}" in text and "[1] baseline" in text and "[2]" in text
    assert "recall@20" in text and "recall@100" not in text.split("slice all")[1]  # capped at depth 20
    assert "recall@100 and P@100 are not reported" in text
    assert "500 resamples" in text and ("n.s." in text or "better" in text or "worse" in text)
    assert "%" in err.getvalue()  # progress
    body = json.loads((tmp_path / "out.json").read_text())
    assert body["evaluation"]["id"] == run.pk and body["semantics"]["depth"] == 20
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert {r["config"] for r in rows} == {c.label for c in run.configs.all()}
    with pytest.raises(CommandError, match=r"Depth \(documents per query\) must be between 10 and 333 \(got 0\)"):
        call_command("evaluate", "--project", project.slug, "--index", str(index.pk), "--k", "0", stdout=out)
    with pytest.raises(CommandError, match="No query tag 'nope'"):
        call_command("evaluate", "--project", project.slug, "--tag", "nope", "--index", str(index.pk), stdout=out)
    assert EvalRun.objects.count() == 1

    # With a trained reranker: every configuration is reranked, and the rerank stage shows in the latency.
    cross = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=lead)
    call_command(
        "evaluate", "--project", project.slug, "--tag", "test", "--index", str(index.pk), "--mode", "hybrid",
        "--rerank", str(cross.pk), "--rerank-top-n", "20", "--k", "10", "--resamples", "200", stdout=out,
    )  # fmt: skip
    reranked = EvalRun.objects.latest("id").configs.get()
    assert reranked.configuration.reranker == cross and "rerank ce top 20" in reranked.label
    assert reranked.results["latency"]["rerank"]["n"] == 10
    with pytest.raises(CommandError, match="No trained reranker 999999"):
        call_command("evaluate", "--project", project.slug, "--index", str(index.pk), "--rerank", "999999", stdout=out)

    # A run that fails half way (here: the index cannot be loaded) leaves nothing behind.
    with (
        mock.patch.object(batch_search, "engine_for", side_effect=WorkbenchError("index files are gone")),
        pytest.raises(CommandError, match="index files are gone"),
    ):
        call_command("evaluate", "--project", project.slug, "--index", str(index.pk), stdout=out)
    assert EvalRun.objects.count() == 2
