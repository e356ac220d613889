"""The functional losses: hand-computed values, an independent loop reference for LambdaLoss,
padding anywhere in the row, and input validation."""
from __future__ import annotations

import math

import pytest
import torch

from crossrank.losses import functional as F

ALL_LABELLED = ["bce", "mse", "ranknet", "margin_mse", "listnet", "listmle", "plistmle", "lambda_loss"]


def t(rows, dtype=torch.float64, grad=False):
    return torch.tensor(rows, dtype=dtype, requires_grad=grad)


# ----------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("sigma", [1.0, 0.5, 3.0])
def test_ranknet_two_docs(sigma):
    s1, s2 = 0.3, 1.1
    # the default is sentence-transformers' RankNetLoss default: log base 2
    expected = math.log2(1 + math.exp(-sigma * (s1 - s2)))
    assert F.ranknet(t([[s1, s2]]), t([[1.0, 0.0]]), sigma=sigma).item() == pytest.approx(expected, abs=1e-12)
    # order of the columns does not matter
    assert F.ranknet(t([[s2, s1]]), t([[0.0, 1.0]]), sigma=sigma).item() == pytest.approx(expected, abs=1e-12)
    natural = F.ranknet(t([[s1, s2]]), t([[1.0, 0.0]]), sigma=sigma, reduction_log="natural").item()
    assert natural == pytest.approx(math.log(1 + math.exp(-sigma * (s1 - s2))), abs=1e-12)


@pytest.mark.parametrize("reduction_log,log_of_e", [(None, 1 / math.log(2)), ("binary", 1 / math.log(2)), ("natural", 1.0)])
def test_ranknet_gradient_by_hand(reduction_log, log_of_e):
    s1, s2, sigma = 0.3, 1.1, 0.7
    scores = t([[s1, s2]], grad=True)
    options = {} if reduction_log is None else {"reduction_log": reduction_log}
    F.ranknet(scores, t([[1.0, 0.0]]), sigma=sigma, **options).backward()
    # d/ds1 log_b(1 + exp(-sigma (s1 - s2))) = -sigma * sigmoid(-sigma (s1 - s2)) / ln b
    g = -sigma / (1 + math.exp(sigma * (s1 - s2))) * log_of_e
    assert scores.grad.tolist() == [pytest.approx([g, -g], abs=1e-12)]


def test_ranknet_averages_over_all_pairs_of_the_batch():
    scores = t([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    labels = t([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    f = lambda d: math.log2(1 + math.exp(-d))  # noqa: E731
    expected = (f(1.0) + f(2.0) + f(1.0) + f(-1.0)) / 4
    assert F.ranknet(scores, labels, mask).item() == pytest.approx(expected, abs=1e-12)


def test_ranknet_without_ordered_pairs_is_zero_with_zero_grad():
    scores = t([[0.5, -0.5]], grad=True)
    loss = F.ranknet(scores, t([[1.0, 1.0]]))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(scores.grad == 0)


def test_bce_mse_margin_mse_by_hand():
    s, y = 0.7, 1.0
    expected = -math.log(1 / (1 + math.exp(-s)))
    assert F.bce(t([[s, -1.0]]), t([[y, 0.0]]), torch.tensor([[True, False]])).item() == pytest.approx(expected)
    pw = F.bce(t([[s]]), t([[y]]), pos_weight=2.5).item()
    assert pw == pytest.approx(2.5 * expected)
    assert F.mse(t([[1.0, 2.0, 9.0]]), t([[0.0, 4.0, 0.0]]), torch.tensor([[True, True, False]])).item() == 2.5
    # student margins (2, 3), teacher margins (1, 1)
    assert F.margin_mse(t([[3.0, 1.0, 0.0]]), t([[2.0, 1.0, 1.0]])).item() == pytest.approx(2.5)


def test_listnet_by_hand():
    s, y = [1.0, 0.0], [2.0, 0.0]
    p = [math.exp(v) / sum(math.exp(u) for u in y) for v in y]
    logq = [v - math.log(sum(math.exp(u) for u in s)) for v in s]
    expected = -sum(a * b for a, b in zip(p, logq))
    assert F.listnet(t([s]), t([y])).item() == pytest.approx(expected)


def test_listmle_by_hand_and_stable_ties():
    s = [0.2, 1.5, -0.3]
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    # labels order docs as 1, 0, 2
    expected = -((s[1] - lse(s)) + (s[0] - lse([s[0], s[2]])))
    assert F.listmle(t([s]), t([[1.0, 2.0, 0.0]])).item() == pytest.approx(expected)
    # ties keep the input order: labels [1, 1, 0] -> order 0, 1, 2 (not 1, 0, 2)
    tied = -((s[0] - lse(s)) + (s[1] - lse([s[1], s[2]])))
    assert F.listmle(t([s]), t([[1.0, 1.0, 0.0]])).item() == pytest.approx(tied)
    swapped = -((s[1] - lse(s)) + (s[0] - lse([s[0], s[2]])))
    assert F.listmle(t([[s[1], s[0], s[2]]]), t([[1.0, 1.0, 0.0]])).item() == pytest.approx(swapped)


def test_plistmle_default_weights_by_hand():
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    w = F.plistmle_default_weight(mask)
    assert w.tolist() == [[3.0, 1.0, 0.0, 0.0], [7.0, 3.0, 1.0, 0.0]]
    s = [0.2, 1.5, -0.3]
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    expected = -(0.75 * (s[0] - lse(s)) + 0.25 * (s[1] - lse(s[1:])))
    assert F.plistmle(t([s]), t([[3.0, 2.0, 1.0]])).item() == pytest.approx(expected, abs=1e-9)
    assert F.plistmle(t([s]), t([[3.0, 2.0, 1.0]]), lambda_weight=None).item() == pytest.approx(
        F.listmle(t([s]), t([[3.0, 2.0, 1.0]])).item()
    )


def test_grouped_ce_and_mnrl_by_hand():
    s = [2.0, 0.5, -1.0]
    expected = -(s[0] - math.log(sum(math.exp(x) for x in s)))
    assert F.grouped_ce(t([s])).item() == pytest.approx(expected)
    tau = 0.5
    scaled = [x / tau for x in s]
    assert F.grouped_ce(t([s]), temperature=tau).item() == pytest.approx(
        -(scaled[0] - math.log(sum(math.exp(x) for x in scaled)))
    )
    act = [10 / (1 + math.exp(-x)) for x in s]
    assert F.mnrl(t([s])).item() == pytest.approx(-(act[0] - math.log(sum(math.exp(x) for x in act))))
    assert F.mnrl(t([s]), scale=1.0, activation=None).item() == pytest.approx(expected)


# ------------------------------------------------------------- LambdaLoss loop reference


def lambda_reference(scores, labels, mask, weighting, k, sigma, mu, log_base_2):
    """Straight from the LambdaLoss paper / ST docs, with Python loops, in float64."""
    total, count = 0.0, 0
    for s_row, y_row, m_row in zip(scores.tolist(), labels.tolist(), mask.tolist()):
        docs = [(s, y) for s, y, m in zip(s_row, y_row, m_row) if m]
        docs.sort(key=lambda d: -d[0])  # model's ranking
        n = len(docs)
        width = len(s_row)
        cutoff = width if k is None else k
        D = lambda p: math.log2(1 + p)  # noqa: E731  (rank p from 1)
        ideal = sorted((max(y, 0.0) for _, y in docs), reverse=True)
        max_dcg = max(sum((2**g - 1) / D(p + 1) for p, g in enumerate(ideal[:cutoff])), 1e-10)
        G = [(2 ** max(y, 0.0) - 1) / max_dcg for _, y in docs]
        for i in range(n):
            for j in range(n):
                if weighting != "ndcg1" and not docs[i][1] > docs[j][1]:
                    continue
                if not (i < cutoff or j < cutoff):
                    continue
                if weighting == "none":
                    w = 1.0
                elif weighting == "ndcg1":
                    w = G[i] / D(i + 1)
                else:
                    d = abs(i - j)
                    ndcg2 = 0.0 if d == 0 else abs(1 / D(d) - 1 / D(d + 1)) * abs(G[i] - G[j])
                    lrank = abs(1 / D(i + 1) - 1 / D(j + 1)) * abs(G[i] - G[j])
                    w = {"ndcg2": ndcg2, "lambdarank": lrank, "ndcg2pp": mu * ndcg2 + lrank}[weighting]
                diff = docs[i][0] - docs[j][0]
                term = w * -math.log1p(math.exp(-sigma * diff))
                total += term / (math.log(2) if log_base_2 else 1.0)
                count += 1
    return -total / max(count, 1)


@pytest.mark.parametrize("weighting", F.LAMBDA_WEIGHTINGS)
@pytest.mark.parametrize("k", [None, 2])
def test_lambda_loss_matches_loop_reference_with_scattered_padding(weighting, k):
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(3, 6, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(-1, 4, (3, 6), generator=gen).double()
    mask = torch.rand(3, 6, generator=gen) > 0.3
    mask[:, 2] = True
    got = F.lambda_loss(scores, labels, mask, weighting=weighting, k=k, sigma=0.8, mu=4.0).item()
    expected = lambda_reference(scores, labels, mask, weighting, k, 0.8, 4.0, True)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------------- padding


def call(name, scores, labels, mask):
    fn = getattr(F, name)
    if name in ("grouped_ce", "mnrl"):
        return fn(scores, mask)
    return fn(scores, labels, mask)


@pytest.mark.parametrize("name", ALL_LABELLED + ["grouped_ce", "mnrl"])
def test_padding_anywhere_with_garbage_changes_nothing(name):
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    labels = torch.rand(2, 5, generator=gen, dtype=torch.float64)
    labels[0] = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7], dtype=torch.float64)
    base = call(name, scores, labels, None)

    # insert padding columns holding garbage at positions 1 and 4 (never column 0)
    cols = [0, None, 1, 2, None, 3, 4]
    padded_s = torch.stack([scores[:, c] if c is not None else torch.full((2,), v, dtype=torch.float64)
                            for c, v in zip(cols, [0, float("nan"), 0, 0, float("inf"), 0, 0])], dim=1)
    padded_y = torch.stack([labels[:, c] if c is not None else torch.full((2,), float("nan"), dtype=torch.float64)
                            for c in cols], dim=1)
    mask = torch.tensor([c is not None for c in cols]).expand(2, -1).clone()
    padded_s.requires_grad_(True)
    value = call(name, padded_s, padded_y, mask)
    assert value.item() == pytest.approx(base.item(), rel=1e-9, abs=1e-12)
    value.backward()
    assert torch.isfinite(padded_s.grad).all()
    assert torch.all(padded_s.grad[~mask] == 0)


@pytest.mark.parametrize("name", ALL_LABELLED)
def test_float32_and_half_inputs(name):
    gen = torch.Generator().manual_seed(6)
    scores = torch.randn(3, 4, generator=gen)
    labels = torch.rand(3, 4, generator=gen)
    ref = getattr(F, name)(scores.double(), labels.double(), None).item()
    assert getattr(F, name)(scores, labels, None).item() == pytest.approx(ref, rel=1e-5, abs=1e-6)
    half = getattr(F, name)(scores.half(), labels.half(), None)
    assert half.dtype == torch.float32 and math.isfinite(half.item())


def test_plistmle_long_lists_stay_finite():
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(2, 400, generator=gen, requires_grad=True)
    labels = torch.randn(2, 400, generator=gen)
    mask = torch.ones(2, 400, dtype=torch.bool)
    mask[1, 300:] = False
    loss = F.plistmle(scores, labels, mask)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(scores.grad).all()


def test_lambda_loss_extreme_scores_keep_finite_gradients():
    scores = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = F.lambda_loss(scores, torch.tensor([[0.0, 2.0, 1.0]]))
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- validation


def test_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"^ranknet expects scores and labels of the same shape, but got \(4, 3\) and \(4, 2\)$"):
        F.ranknet(torch.zeros(4, 3), torch.zeros(4, 2), torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^mse expects scores and teacher_scores of the same shape"):
        F.mse(torch.zeros(4, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"^listnet expects scores and mask of the same shape, but got \(2, 3\) and \(2, 2\)"):
        F.listnet(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(scores=torch.zeros(3)), "scores of shape \\(batch, list_size\\)"),
        (dict(scores=torch.zeros(2, 2, dtype=torch.long)), "floating-point scores"),
        (dict(scores=[[0.0]]), "torch.Tensor"),
        (dict(mask=torch.ones(2, 2)), "boolean mask"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = dict(scores=torch.zeros(2, 2), labels=torch.zeros(2, 2), mask=None) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        F.lambda_loss(args["scores"], args["labels"], args["mask"])


@pytest.mark.parametrize(
    "call_,match",
    [
        (lambda: F.lambda_loss(torch.zeros(1, 2), torch.zeros(1, 2), weighting="ndcg3"), "weighting"),
        (lambda: F.lambda_loss(torch.zeros(1, 2), torch.zeros(1, 2), k=0), "k to be a positive integer"),
        (lambda: F.ranknet(torch.zeros(1, 2), torch.zeros(1, 2), sigma=-1.0), "sigma"),
        (lambda: F.ranknet(torch.zeros(1, 2), torch.zeros(1, 2), reduction_log="ln"), "reduction_log"),
        (lambda: F.bce(torch.zeros(1, 2), torch.tensor([[0.0, 2.0]])), "labels in \\[0, 1\\]"),
        (lambda: F.bce(torch.zeros(1, 2), torch.zeros(1, 2), pos_weight=0.0), "pos_weight"),
        (lambda: F.grouped_ce(torch.zeros(1, 2), temperature=0.0), "temperature"),
        (lambda: F.mnrl(torch.zeros(1, 2), activation="relu6"), "activation"),
        (lambda: F.plistmle(torch.zeros(1, 2), torch.zeros(1, 2), lambda_weight=3), "callable"),
        (lambda: F.plistmle(torch.zeros(1, 2), torch.zeros(1, 2), lambda_weight=lambda m: torch.ones(3)), "shape"),
        (lambda: F.listnet(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([[True, True], [False, False]])),
         "rows \\[1\\] are all padding"),
        (lambda: F.grouped_ce(torch.zeros(2, 2), torch.tensor([[True, True], [False, True]])), "column 0"),
        (lambda: F.margin_mse(torch.zeros(2, 1), torch.zeros(2, 1)), "at least one negative"),
    ],
)
def test_bad_options_and_layouts(call_, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call_()


def test_empty_masks_give_zero_for_mean_over_pairs_losses():
    scores = torch.zeros(2, 3, requires_grad=True)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    for fn in (F.bce, F.mse, F.ranknet, F.lambda_loss):
        loss = fn(scores, torch.zeros(2, 3), mask)
        loss.backward()
        assert loss.item() == 0.0
