"""Watching a training run for the ways rerankers fail: collapse, chance-level loss, divergence.

Every logging step the monitor looks at
- the spread of scores within each list of a fixed sample, scored in eval mode (no dropout noise):
  evaluation candidates when there is an evaluation set, else training lists. Near zero means the
  model gives every passage the same score (collapse);
- the training loss against its chance level: the loss the best *constant* scorer gets on the same
  batches (ln N for softmax and listwise losses over N candidates, the label entropy for BCE, the
  targets' variance for MSE), computed exactly on every batch;
- non-finite loss or gradient norm (divergence);
and, at each evaluation after half of the steps, the metric against the first-stage baseline.
Symptoms count only after the learning-rate warm-up; a loss at chance and a metric below the first
stage only `grace_steps` after it (both are normal early in training). A symptom is reported once: a warning in the log and an entry in the training report,
with the step and its likely causes. With `stop_on_collapse`, a collapse or divergence ends the run.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CAUSES = {
    "constant scores": "learning rate too high (try 1e-5 to 5e-5), labels all one class, or too few / false negatives",
    "loss at chance level": "learning rate too high or too low, labels all one class, false negatives, or passages "
                            "truncated before the answer (see the data check)",
    "non-finite loss": "learning rate too high, fp16 overflow (try bf16 or fp32), or invalid targets",
    "non-finite gradient": "learning rate too high or fp16 overflow (try bf16 or fp32); clip gradients",
    "below first stage": "too little training, learning rate, truncation, or negatives unlike the evaluation "
                         "candidates; the first stage alone is better so far",
}
#: symptoms that mean the run is broken (stop_on_collapse ends it on these)
COLLAPSE = ("constant scores", "loss at chance level", "non-finite loss", "non-finite gradient")


@dataclass
class MonitorConfig:
    #: within-list score spread (std) below this is "constant scores"
    min_spread: float = 1e-3
    #: ... or below this fraction of the spread at the first logging step
    min_relative_spread: float = 0.02
    #: mean loss within this fraction of the chance level (or above it) counts as "at chance"
    chance_tolerance: float = 0.01
    #: consecutive logging windows a symptom must last before it is reported
    patience: int = 3
    #: no symptom but divergence before this many optimizer steps (the warm-up; set at train start)
    min_step: int = 0
    #: a loss at chance or a metric below the first stage counts only this many steps after warm-up:
    #: early in training both are normal
    grace_steps: int = 50
    stop_on_collapse: bool = False
    metric: str = "nDCG@10"
    #: the spread probe is skipped until this many times its own duration has passed since it last
    #: ran, so that it costs at most ~1/(1+this) of the training time however often logs come
    probe_interval: float = 4.0

    def __post_init__(self) -> None:
        from crossrank.data.ranges import Range, check_ranges

        count = Range(0, integer=True)
        check_ranges("MonitorConfig", self, {"min_spread": Range(0), "min_relative_spread": Range(0), "chance_tolerance": Range(0),
                                             "patience": Range(1, integer=True), "min_step": count, "grace_steps": count,
                                             "probe_interval": Range(0)})


@dataclass
class Symptom:
    name: str
    step: int  # when it was reported
    detail: str
    causes: str
    onset: int = -1  # the first logging step that showed it (-1: the reporting step)
    # the last logging step at which the same check ran and found nothing (-1: none known, so
    # onset - 1): the symptom began after it, though a throttled probe may have missed steps between
    healthy: int = -1

    def __post_init__(self) -> None:
        if self.onset < 0:
            self.onset = self.step
        if self.healthy < 0:
            self.healthy = self.onset - 1

    def message(self) -> str:
        return f"training problem at step {self.step}: {self.name} — {self.detail}. Likely causes: {self.causes}"


@dataclass
class TrainingMonitor:
    """Collects per-batch figures from the trainer and turns them into symptoms at each log."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    probe: Callable[[], float] | None = None  # within-list spread of evaluation candidates' scores
    baseline: dict[str, float] | None = None  # first-stage metrics on the evaluation set
    symptoms: list[Symptom] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    _losses: list[float] = field(default_factory=list)
    _chances: list[float] = field(default_factory=list)
    _spreads: list[float] = field(default_factory=list)
    _first_spread: float | None = None
    _streak: dict[str, int] = field(default_factory=dict)
    _onset: dict[str, int] = field(default_factory=dict)
    _healthy: dict[str, int] = field(default_factory=dict)  # last step each check ran and found nothing
    _probe_seconds: float = 0.0
    _probe_end: float = -math.inf

    # ------------------------------------------------------------------ from the trainer
    def record_batch(self, loss: float, chance: float, spread: float) -> None:
        self._losses.append(float(loss))
        self._chances.append(float(chance))
        self._spreads.append(float(spread))

    def on_log(self, step: int, logs: dict) -> bool:
        """Check the window since the last log; True when training should stop."""
        window = {"step": step}
        for key in ("loss", "grad_norm"):
            value = logs.get(key)
            if value is not None and not math.isfinite(float(value)):
                self._report("non-finite loss" if key == "loss" else "non-finite gradient", step, f"{key} is {value}")
        if self._losses:
            loss = float(np.mean(self._losses))
            chance = float(np.mean(self._chances))
            window.update(loss=loss, chance=chance)
            if not math.isfinite(loss):
                self._report("non-finite loss", step, f"the training loss is {loss}")
            elif chance > 0:
                ratio = loss / chance
                window["loss_to_chance"] = ratio
                self._persist("loss at chance level", step,
                              ratio >= 1 - self.config.chance_tolerance and step >= self.config.min_step + self.config.grace_steps,
                              f"mean loss {loss:.4f} vs {chance:.4f} for a constant scorer on the same batches")
        spread = self._probe() if self.probe is not None else (float(np.mean(self._spreads)) if self._spreads else None)
        if spread is not None and math.isfinite(spread):
            window["spread"] = spread
            if self._first_spread is None:
                self._first_spread = spread
            low = spread < self.config.min_spread or spread < self.config.min_relative_spread * self._first_spread
            self._persist("constant scores", step, low,
                          f"score spread within lists {spread:.2e} (at the first log {self._first_spread:.2e})")
        self.history.append(window)
        self._losses.clear(), self._chances.clear(), self._spreads.clear()
        return self.config.stop_on_collapse and any(s.name in COLLAPSE for s in self.symptoms)

    def on_evaluate(self, step: int, max_steps: int, metrics: dict) -> None:
        if not self.baseline or self.config.metric not in self.baseline:
            return
        value = metrics.get(f"eval_{self.config.metric}")
        base = self.baseline[self.config.metric]
        if value is None or step < max(self.config.min_step + self.config.grace_steps, max_steps // 2):
            return
        if value < base:
            self._report("below first stage", step, f"{self.config.metric} {value:.4f} vs the first stage's {base:.4f}")

    def _probe(self) -> float | None:
        """The probe's spread, or None while it is throttled (see `MonitorConfig.probe_interval`)."""
        now = time.perf_counter()
        if now - self._probe_end < self.config.probe_interval * self._probe_seconds:
            return None
        value = self.probe()
        self._probe_end = time.perf_counter()
        self._probe_seconds = self._probe_end - now
        return value

    # ------------------------------------------------------------------ symptoms
    def _persist(self, name: str, step: int, present: bool, detail: str) -> None:
        if not present or step < self.config.min_step:
            self._streak[name] = 0
            if not present:
                self._healthy[name] = step
            return
        self._streak[name] = self._streak.get(name, 0) + 1
        if self._streak[name] == 1:
            self._onset[name] = step
        if self._streak[name] >= self.config.patience:
            self._report(name, step, detail, self._onset[name], self._healthy.get(name, 0))

    def _report(self, name: str, step: int, detail: str, onset: int = -1, healthy: int = -1) -> None:
        if any(s.name == name for s in self.symptoms):
            return
        symptom = Symptom(name, step, detail, CAUSES[name], onset, healthy)
        self.symptoms.append(symptom)
        logger.warning(symptom.message())

    def as_dict(self) -> dict:
        return {"symptoms": [asdict(s) for s in self.symptoms], "windows": self.history, "baseline": self.baseline}


class MonitorCallback(TrainerCallback):
    """Hands the trainer's logs and evaluations to a TrainingMonitor."""

    def __init__(self, monitor: TrainingMonitor):
        self.monitor = monitor

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and ("loss" in logs or "grad_norm" in logs) and self.monitor.on_log(state.global_step, logs):
            logger.warning("stopping: --stop-on-collapse is set; the best checkpoint so far is kept")
            control.should_training_stop = True
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics:
            self.monitor.on_evaluate(state.global_step, state.max_steps, metrics)
        return control


def chance_loss(loss, batch: dict) -> float:
    """The loss of the best constant scorer on `batch` (scores that ignore the text)."""
    labels = [t for row in batch.get("labels") or [] for t in row]
    mean = float(np.mean(labels)) if labels else 0.0
    p = min(max(mean, 1e-4), 1 - 1e-4)
    constants = {0.0, mean, math.log(p / (1 - p))}  # any (shift-invariant losses), MSE's and BCE's optimum
    best = math.inf
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for c in constants:
            value = float(loss(lambda pairs, c=c: torch.full((len(pairs),), c), batch))
            best = min(best, value)
    return best


def within_list_spread(scores: torch.Tensor, sizes: list[int]) -> float:
    """Mean standard deviation of the scores within each list of >= 2 (else across all scores)."""
    flat = scores.detach().float()
    parts = [p for p in torch.split(flat, sizes) if len(p) >= 2]
    if not parts:
        return float(flat.std()) if len(flat) >= 2 else 0.0
    return float(torch.stack([p.std() for p in parts]).mean())


def spread_probe(evaluator, examples, cross_encoder, queries: int = 8, per_query: int = 8) -> Callable[[], float] | None:
    """A function giving the within-list score spread (in eval mode, so without dropout noise) on a
    fixed sample: the evaluation candidates when there is an evaluation set, else training lists."""
    pairs: list[tuple[str, str]] = []
    sizes: list[int] = []
    ev = getattr(evaluator, "evaluators", [evaluator])[0] if evaluator is not None else None
    if ev is not None and getattr(ev, "candidates", None):
        for qid in list(ev.candidates)[:queries]:
            docs = list(ev.candidates[qid])[:per_query]
            pairs += [(ev.queries[qid], ev.texts[d]) for d in docs]
            sizes.append(len(docs))
    else:
        lists = [e for e in examples if len(e.passages) >= 2][:queries]
        for e in lists:
            pairs += [(e.query, p) for p in e.passages[:per_query]]
            sizes.append(min(len(e.passages), per_query))
        if not lists:  # single pairs: their spread across many examples
            pairs = [(e.query, e.passages[0]) for e in examples[: queries * per_query]]
            sizes = [len(pairs)]
    if len(pairs) < 2:
        return None

    quiet = logging.getLogger("crossrank.model")

    def probe() -> float:
        level = quiet.level
        quiet.setLevel(max(level, logging.WARNING))  # the per-call truncation note would repeat every log
        try:
            scores = cross_encoder.predict(pairs, show_progress_bar=False)
        finally:
            quiet.setLevel(level)
        return within_list_spread(torch.from_numpy(np.asarray(scores, dtype=np.float32)).reshape(-1), sizes)

    return probe
