"""Training cross-encoders: examples, data preparation, evaluation while training, the trainer."""
from crossrank.training.beir_sets import BeirSetConfig, beir_candidates, beir_evaluators, nano_mean
from crossrank.training.config import DataConfig, EvalConfig, TrainConfig
from crossrank.training.examples import TrainingExample, collate
from crossrank.training.evaluator import MultiDatasetEvaluator, RerankingEvaluator

__all__ = [
    "DataConfig", "EvalConfig", "TrainConfig", "TrainingExample", "collate",
    "RerankingEvaluator", "MultiDatasetEvaluator", "BeirSetConfig", "beir_candidates", "beir_evaluators", "nano_mean",
    "train",
]


def __getattr__(name):
    if name == "train":  # the trainer pulls in transformers' Trainer; import on use
        from crossrank.training.trainer import train

        return train
    raise AttributeError(name)
