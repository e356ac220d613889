"""CrossEncoder on the tiny random BERT: API behaviour, errors, save/load, pickle refusal."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder

PAIRS = [
    ("what is a cat", "a cat is a small domesticated carnivorous mammal"),
    ("how tall is everest", "Mount Everest is 8,849 metres high"),
    ("what is a cat", "the stock market fell today"),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return CrossEncoder(tiny_model_dir)


def test_predict_shape_order_and_dtype(tiny):
    scores = tiny.predict(PAIRS)
    assert scores.dtype == np.float32 and scores.shape == (3,)
    # input order is kept however pairs are batched
    one_by_one = np.array([tiny.predict([p])[0] for p in PAIRS])
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5)
    reversed_scores = tiny.predict(PAIRS[::-1], batch_size=2)
    np.testing.assert_allclose(scores, reversed_scores[::-1], atol=1e-5)


def test_predict_matches_plain_transformers(tiny, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        enc = tok([q for q, _ in PAIRS], [p for _, p in PAIRS], padding=True, return_tensors="pt")
        expected = model(**enc).logits[:, 0].numpy()
    np.testing.assert_allclose(tiny.predict(PAIRS), expected, atol=1e-5)


def test_sigmoid_activation(tiny):
    raw = tiny.predict(PAIRS)
    prob = tiny.predict(PAIRS, activation="sigmoid")
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-raw)), atol=1e-6)
    assert tiny.activation == "identity"


def test_empty_input(tiny):
    out = tiny.predict([])
    assert out.shape == (0,) and out.dtype == np.float32


@pytest.mark.parametrize(
    "bad, message",
    [
        ([("q", "p"), ("q", 3)], r"pairs\[1\]\[1\] must be a str"),
        ([(None, "p")], r"pairs\[0\]\[0\] must be a str"),
        ([("q", "p"), "qp"], r"pairs\[1\] must be a \(query, passage\) pair"),
        ("just a string", "expects a list of"),
    ],
)
def test_bad_pairs_raise_type_error(tiny, bad, message):
    with pytest.raises(TypeError, match=message):
        tiny.predict(bad)


def test_unknown_activation_is_rejected(tiny):
    with pytest.raises(ValueError, match="unknown activation"):
        tiny.predict(PAIRS, activation="relu6")


def test_rank_orders_best_first_and_breaks_ties_by_input_order(tiny):
    passages = ["alpha beta", "alpha beta", "gamma", "alpha beta"]
    ranked = tiny.rank("alpha", passages, return_documents=True)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    ids_of_dupes = [r["corpus_id"] for r in ranked if r["text"] == "alpha beta"]
    assert ids_of_dupes == [0, 1, 3]  # identical scores keep input order
    top = tiny.rank("alpha", passages, top_k=2)
    assert len(top) == 2 and "text" not in top[0]
    assert [r["corpus_id"] for r in top] == [r["corpus_id"] for r in ranked[:2]]


def test_multi_label_model_returns_matrix(tiny_model_dir, tmp_path):
    ce = CrossEncoder(tiny_model_dir, num_labels=3)
    out = ce.predict(PAIRS, activation="softmax")
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="one output"):
        ce.rank("q", ["p"])


def test_save_round_trip(tiny, tmp_path):
    tiny.save(tmp_path / "saved")
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "config_sentence_transformers.json"} <= files
    assert not any(name.startswith(".save-") for name in files)
    again = CrossEncoder(tmp_path / "saved")
    assert again.max_length == tiny.max_length and again.activation == "identity"
    np.testing.assert_allclose(again.predict(PAIRS), tiny.predict(PAIRS), atol=1e-6)


def test_stored_activation_and_max_length_are_read(tiny_model_dir, tmp_path):
    ce = CrossEncoder(tiny_model_dir, max_length=64, activation="sigmoid")
    ce.save(tmp_path / "m")
    stored = json.loads((tmp_path / "m" / "config_sentence_transformers.json").read_text())
    assert stored["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    again = CrossEncoder(tmp_path / "m")
    assert again.activation == "sigmoid" and again.max_length == 64


def test_legacy_sentence_transformers_activation_key(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "legacy"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.activation.Sigmoid"
    (folder / "config.json").write_text(json.dumps(config))
    assert CrossEncoder(folder).activation == "sigmoid"


def test_pickle_weights_refused_without_opt_in(tiny_model_dir, tmp_path):
    import shutil

    from transformers import AutoModelForSequenceClassification

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle"):
        CrossEncoder(folder)
    ce = CrossEncoder(folder, allow_pickle=True)
    assert ce.predict(PAIRS).shape == (3,)


def test_missing_folder_and_weights_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model weights"):
        CrossEncoder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        CrossEncoder(str(tmp_path / "nope" / "deeper"))


def test_truncation_cuts_passage_before_query(tiny):
    ce = CrossEncoder(tiny.path, max_length=16)
    query = "one two three four five six"  # 6 tokens
    passage = " ".join(["word"] * 40)
    enc = ce.tokenize([query], [passage])
    ids = enc.input_ids[0]
    assert len(ids) == 16 and enc.truncated == 1
    tokens = ce.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[1:7] == ["one", "two", "three", "four", "five", "six"]  # whole query kept
    assert tokens.count("word") == 16 - 3 - 6
    # a query longer than the budget is cut only then, keeping one passage token
    long_q = " ".join(["q"] * 30)
    tokens = ce.tokenizer.convert_ids_to_tokens(ce.tokenize([long_q], ["word word"]).input_ids[0])
    assert len(tokens) == 16 and tokens.count("word") == 1


def test_setting_max_length_changes_truncation(tiny_model_dir):
    ce = CrossEncoder(tiny_model_dir, max_length=64)
    long_pair = [("query", " ".join(["word"] * 100))]
    assert ce.tokenize(*zip(*long_pair)).lengths.max() == 64
    ce.max_length = 20
    assert ce.tokenize(*zip(*long_pair)).lengths.max() == 20
    with pytest.raises(ValueError, match="max_length"):
        ce.max_length = 2
