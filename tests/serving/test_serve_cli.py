"""`crossrank serve`: flags to ServerConfig, the API key from the environment, the missing-extra error."""
from __future__ import annotations

import importlib.util

import pytest

from crossrank.cli.main import build_parser, main


def config_for(argv):
    from crossrank.cli.serve import config_from_args

    return config_from_args(build_parser().parse_args(["serve", "--model", "m", *argv]))


def test_flags_fill_the_config(monkeypatch):
    monkeypatch.delenv("CROSSRANK_API_KEY", raising=False)
    config = config_for(["--host", "0.0.0.0", "--port", "9001", "--max-documents", "7", "--max-batch-tokens", "1024",
                         "--batch-wait-ms", "2.5", "--max-queue", "9", "--timeout-s", "3", "--name", "mini"])
    assert (config.host, config.port, config.max_documents, config.max_batch_tokens, config.batch_wait_ms,
            config.max_queue, config.timeout_s, config.model_name, config.api_key) == (
        "0.0.0.0", 9001, 7, 1024, 2.5, 9, 3.0, "mini", None)
    defaults = config_for([])
    assert (defaults.host, defaults.port, defaults.batch_wait_ms, defaults.max_batch_tokens) == ("127.0.0.1", 8000, 5.0, None)


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("CROSSRANK_API_KEY", "from-env")
    assert config_for([]).api_key == "from-env"
    assert config_for(["--api-key", "from-flag"]).api_key == "from-flag"


def test_serve_loads_the_model_and_calls_the_library(monkeypatch, tiny_model_dir):
    import crossrank.serving

    seen = {}
    monkeypatch.setattr(crossrank.serving, "serve", lambda model, config: seen.update(model=model, config=config))
    assert main(["serve", "--model", str(tiny_model_dir), "--port", "0", "--max-queue", "4"]) == 0
    assert seen["model"].path == tiny_model_dir and seen["config"].max_queue == 4


def test_missing_extra_names_it(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "--model", "does-not-matter"]) == 2
    err = capsys.readouterr().err
    assert "uvicorn" in err and "pip install 'crossrank[server]'" in err
    from crossrank.serving import BackgroundServer, ServerConfig

    with pytest.raises(ModuleNotFoundError, match=r"crossrank\[server\]"):
        BackgroundServer(object(), ServerConfig(port=0))


def test_serve_model_is_the_library_call(monkeypatch, tiny_model_dir):
    import crossrank.serving
    from crossrank.serving import ServerConfig
    from crossrank.serving.launch import serve_model

    seen = {}
    monkeypatch.setattr(crossrank.serving, "serve", lambda model, config: seen.update(model=model, config=config))
    config = ServerConfig(port=0, max_queue=3)
    serve_model(str(tiny_model_dir), config, max_length=48, device="cpu")
    assert seen["config"] is config and seen["model"].path == tiny_model_dir and seen["model"].max_length == 48
    scores = seen["model"].predict([("what is a cat", "a cat is a small animal")])
    assert len(scores) == 1
