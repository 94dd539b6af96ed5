"""Release gates: absolute floors and non-inferiority against the active release, per slice.

The decisions are pure functions over numbers and comparison cells (``floor_gate``, ``noninferiority_gate``), so
they are tested on constructed comparisons; ``gates_evaluate`` finds the numbers in the release's frozen evaluation
reports. A gate whose number cannot be found is "not computable" — never passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from evaluation.models import EvalConfig
from evaluation.selectors import comparison_build, run_metrics
from releases.models import GatePolicy, Release
from workbench.errors import WorkbenchError

PASSED, FAILED, NOT_COMPUTABLE, NOT_APPLICABLE = "passed", "failed", "not computable", "not applicable"


@dataclass(frozen=True)
class Gate:
    name: str
    status: str
    measured: float | None = None
    threshold: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def floor_gate(name: str, measured: float | None, threshold: float, *, higher_is_better: bool, why: str = "") -> Gate:
    """``measured`` must reach the threshold (at least it, or below it for latency and hallucination)."""
    if measured is None:
        return Gate(name, NOT_COMPUTABLE, None, threshold, why or "no figure in the release's reports")
    ok = measured >= threshold if higher_is_better else measured < threshold
    return Gate(name, PASSED if ok else FAILED, measured, threshold)


def noninferiority_gate(cells: Iterable[Mapping[str, Any]], *, metrics: Iterable[str], margin: float) -> Gate:
    """Fails when any (metric, slice) cell is significantly worse (Holm-corrected verdict "worse") by more than the
    margin. Cells are comparison cells candidate minus active (``evaluation.metrics.ComparisonCell.to_dict``)."""
    wanted = set(metrics)
    checked, worse = 0, []
    for cell in cells:
        if cell["metric"] not in wanted or cell.get("diff") is None:
            continue
        checked += 1
        if cell.get("verdict") == "worse" and cell["diff"] < -margin:
            worse.append(f"{cell['metric']} on {cell['slice']}: {cell['diff']:+.3f} (Holm p {cell['p_holm']:.3g})")
    name = f"no slice significantly worse than the active release by more than {margin:g}"
    if not checked:
        return Gate(name, NOT_COMPUTABLE, None, -margin, "the comparison holds none of the gated metrics")
    if worse:
        return Gate(name, FAILED, None, -margin, "; ".join(worse))
    return Gate(name, PASSED, None, -margin, f"{checked} metric × slice cells checked")


def _config_results(release: Release) -> EvalConfig | None:
    """The newest finished evaluation of the release's configuration among its reports."""
    return (
        EvalConfig.objects.filter(
            eval_run__in=release.eval_runs.all(),
            configuration=release.configuration,
            eval_run__finished_at__isnull=False,
        )
        .select_related("eval_run")
        .order_by("-eval_run__finished_at")
        .first()
    )


def _comparable_active(release: Release, active: Release, candidate: EvalConfig) -> EvalConfig | None:
    """The active release's configuration evaluated on the same query set: same evaluation first."""
    same_run = EvalConfig.objects.filter(eval_run=candidate.eval_run, configuration=active.configuration).first()
    if same_run is not None:
        return same_run
    return (
        EvalConfig.objects.filter(
            configuration=active.configuration,
            eval_run__query_set=candidate.eval_run.query_set,
            eval_run__finished_at__isnull=False,
        )
        .select_related("eval_run")
        .order_by("-eval_run__finished_at")
        .first()
    )


def _with_detail(gate: Gate, detail: str) -> Gate:
    return gate if gate.detail else Gate(gate.name, gate.status, gate.measured, gate.threshold, detail)


def policy_for(release: Release) -> GatePolicy:
    return GatePolicy.objects.filter(project=release.project).first() or GatePolicy(project=release.project)


def answer_hallucination(release: Release) -> tuple[float | None, str]:
    """Hallucination rate of the newest finished answer run of the release's configuration among its reports:
    from reviewers' QA where answers were reviewed, else from gold evidence; (None, why) when neither exists."""
    from evaluation.answers.selectors import human_summary

    runs = release.answer_runs.filter(configuration=release.configuration, finished_at__isnull=False)
    run = runs.order_by("-finished_at").first()
    if run is None:
        return None, "no answer run of this configuration among the release's reports (run answers and review them)"
    figures, source = human_summary(run), "reviewers"
    if figures is None:
        figures, source = (run.summary or {}).get("gold"), "gold evidence"
    try:
        value = figures["slices"]["all"]["metrics"]["hallucination"]["mean"]
    except (TypeError, KeyError):
        return None, f"answer run #{run.pk} has neither reviews nor gold evidence"
    return value, f"answer run #{run.pk}, from {source}"


def gates_evaluate(release: Release, *, answer_figures: Mapping[str, float] | None = None) -> list[Gate]:
    """Every gate of the project's policy, measured on the release's reports."""
    policy = policy_for(release)
    hallucination, hallucination_why = answer_hallucination(release)
    if answer_figures and "hallucination_rate" in answer_figures:
        hallucination, hallucination_why = answer_figures["hallucination_rate"], "given"
    cfg = _config_results(release)
    means: dict[str, float] = {}
    p95 = None
    why = "none of the release's evaluation reports evaluated its search configuration"
    if cfg is not None:
        means = run_metrics(cfg).means()
        p95 = (cfg.results.get("latency") or {}).get("total", {}).get("p95")
        why = f"not in evaluation #{cfg.eval_run_id}"
    gates = [
        floor_gate("recall@5", means.get("recall@5"), policy.recall_at_5_min, higher_is_better=True, why=why),
        floor_gate("MRR@10", means.get("MRR@10"), policy.mrr_min, higher_is_better=True, why=why),
        floor_gate(
            "p95 latency (ms)",
            p95,
            policy.p95_latency_ms_max,
            higher_is_better=False,
            why=why if cfg is None else "the report holds no latency",
        ),
        _with_detail(
            floor_gate(
                "hallucination rate",
                hallucination,
                policy.hallucination_max,
                higher_is_better=False,
                why=hallucination_why,
            ),
            hallucination_why,
        ),
    ]
    active = Release.objects.filter(project=release.project, status=Release.Status.ACTIVE).exclude(pk=release.pk)
    active = active.select_related("configuration").first()
    name = f"no slice significantly worse than the active release by more than {policy.noninferiority_margin:g}"
    if active is None:
        gates.append(Gate(name, NOT_APPLICABLE, None, None, "no release is active: nothing to be inferior to"))
    elif cfg is None:
        gates.append(Gate(name, NOT_COMPUTABLE, None, None, why))
    elif active.configuration_id == release.configuration_id:
        gates.append(Gate(name, PASSED, None, None, "the same search configuration as the active release"))
    else:
        base = _comparable_active(release, active, cfg)
        if base is None:
            gates.append(
                Gate(
                    name,
                    NOT_COMPUTABLE,
                    None,
                    None,
                    f"{active} was not evaluated on {cfg.eval_run.query_set}: evaluate both configurations together",
                )
            )
        else:
            try:
                comparison = comparison_build(baseline=base, candidates=[cfg])
            except WorkbenchError as exc:
                gates.append(Gate(name, NOT_COMPUTABLE, None, None, str(exc)))
            else:
                cells = next(iter(comparison["comparisons"].values()))["cells"]
                gates.append(
                    noninferiority_gate(cells, metrics=policy.metrics_compared(), margin=policy.noninferiority_margin)
                )
    return gates


def gates_blocking(gates: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Gates that need a written reason to approve over: failed, or not computable."""
    return [g for g in gates if g["status"] in (FAILED, NOT_COMPUTABLE)]
