"""A sweep over the library's config dataclasses: no numeric setting takes NaN (nor a bool, nor text).

NaN passes every `<` and `>` comparison as False, so a check written as `if value < 1: raise` lets it
through to a silent wrong result; a range check (`crossrank.data.ranges`) refuses it. A new numeric
field without a check fails here.
"""
from __future__ import annotations

import dataclasses
import math
import re

import pytest

from crossrank.evaluation.evaluate_job import EvaluateConfig
from crossrank.model.fusion import Feedback, FusionWeights
from crossrank.model.windows import WindowConfig
from crossrank.pipeline import RerankConfig
from crossrank.pipeline.ray_engine import RayEngineConfig
from crossrank.retrieval.config import BM25Config
from crossrank.retrieval.retrieve_job import RetrieveConfig
from crossrank.serving.config import ServerConfig
from crossrank.training.beir_sets import BeirSetConfig
from crossrank.training.config import TrainConfig
from crossrank.training.corpus_examples import PseudoDataConfig
from crossrank.training.mine_job import MineJobConfig
from crossrank.training.mining import MiningConfig
from crossrank.training.monitor import MonitorConfig
from crossrank.training.teachers import TeacherConfig
from crossrank.workflows.export import ExportConfig
from crossrank.workflows.fidelity import FidelityConfig
from crossrank.workflows.quickstart import QuickstartConfig, check_settings


def _train(**values):
    return TrainConfig.from_dict({"model": "m", **values})


# config class -> a function building it with one field overridden
BUILDERS = {
    EvaluateConfig: lambda **kw: EvaluateConfig(qrels=".", run=".", **kw),
    FusionWeights: lambda **kw: FusionWeights(**kw),
    Feedback: lambda **kw: Feedback(**kw),
    WindowConfig: lambda **kw: WindowConfig(**kw),
    RerankConfig: lambda **kw: RerankConfig(**kw),
    RayEngineConfig: lambda **kw: RayEngineConfig(**kw),
    BM25Config: lambda **kw: BM25Config(**kw),
    RetrieveConfig: lambda **kw: RetrieveConfig(corpus=".", queries=".", output="out", **kw),
    ServerConfig: lambda **kw: ServerConfig(**kw),
    BeirSetConfig: lambda **kw: BeirSetConfig(folders=["x"], **kw),
    PseudoDataConfig: lambda **kw: PseudoDataConfig(corpus=".", **kw),
    MineJobConfig: lambda **kw: MineJobConfig(queries=".", corpus=".", qrels=".", output="out", **kw),
    MiningConfig: lambda **kw: MiningConfig(**kw),
    MonitorConfig: lambda **kw: MonitorConfig(**kw),
    TeacherConfig: lambda **kw: TeacherConfig(**kw),
    ExportConfig: lambda **kw: ExportConfig(model=".", **kw),
    FidelityConfig: lambda **kw: FidelityConfig(data=".", **kw),
    QuickstartConfig: lambda **kw: check_settings(QuickstartConfig(data=".", **kw)),
    TrainConfig: lambda **kw: _train(**kw),
}


def numeric_fields(cls) -> list[str]:
    """Fields annotated int or float (optionally `| None`), from the annotation's text."""
    out = []
    for f in dataclasses.fields(cls):
        words = set(re.findall(r"[A-Za-z_]+", str(f.type)))
        if words & {"int", "float"} and words <= {"int", "float", "None"}:
            out.append(f.name)
    return out


CASES = [(cls, name) for cls, build in BUILDERS.items() if build is not None for name in numeric_fields(cls)]


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_no_numeric_setting_takes_nan(cls, name):
    with pytest.raises(ValueError, match=name):
        BUILDERS[cls](**{name: math.nan})


@pytest.mark.parametrize("part", ["data", "eval"])
def test_train_data_and_eval_numbers_take_no_nan(part):
    from crossrank.training.config import DataConfig, EvalConfig

    cls = {"data": DataConfig, "eval": EvalConfig}[part]
    for name in numeric_fields(cls):
        with pytest.raises(ValueError, match=name):
            _train(**{part: {"run": "r", name: math.nan} if part == "eval" else {name: math.nan}})
