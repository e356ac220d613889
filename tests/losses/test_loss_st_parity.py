"""Parity with sentence-transformers' cross-encoder losses (the reference implementation).

Each ST loss is run on a stand-in CrossEncoder whose logits come from the same ScoreTable the
crossrank loss scores with, on ragged (padded) lists; values and the gradients with respect to
the logits must agree within 1e-5.
"""
from __future__ import annotations

import pytest
import torch

from crossrank import losses
from crossrank.losses import functional as F
from crossrank.losses.base import pad_lists

TOL = 1e-5
RAGGED = [5, 2, 7, 4]  # unequal list lengths -> padding


def run_both(table, ours, theirs):
    table.logits.grad = None
    value_ours = ours()
    value_ours.backward()
    grad_ours = table.logits.grad.clone()
    table.logits.grad = None
    value_theirs = theirs()
    value_theirs.backward()
    grad_theirs = table.logits.grad.clone()
    return value_ours.detach(), value_theirs.detach(), grad_ours, grad_theirs


def check_parity(table, ours, theirs):
    v1, v2, g1, g2 = run_both(table, ours, theirs)
    assert torch.isfinite(v1)
    assert abs(v1.item() - v2.item()) <= TOL * max(1.0, abs(v2.item())), (v1.item(), v2.item())
    torch.testing.assert_close(g1, g2, atol=TOL, rtol=1e-4)
    return v1


def st_listwise_call(loss, batch):
    labels = [torch.tensor(row) for row in batch["labels"]]
    return lambda: loss([batch["queries"], batch["passages"]], labels)


def functional_call(fn, table, batch, **kwargs):
    def call():
        pairs = [(q, p) for q, plist in zip(batch["queries"], batch["passages"]) for p in plist]
        scores, mask = pad_lists(table(pairs), [len(p) for p in batch["passages"]])
        labels, _ = pad_lists(torch.tensor([x for row in batch["labels"] for x in row]), [len(r) for r in batch["labels"]])
        return fn(scores, labels, mask, **kwargs)

    return call


SCHEMES = {
    "none": "NoWeightingScheme",
    "ndcg1": "NDCGLoss1Scheme",
    "ndcg2": "NDCGLoss2Scheme",
    "lambdarank": "LambdaRankScheme",
    "ndcg2pp": "NDCGLoss2PPScheme",
}


@pytest.mark.parametrize("weighting", list(SCHEMES))
@pytest.mark.parametrize("k", [None, 1, 3])
@pytest.mark.parametrize("reduction_log", ["binary", "natural"])
def test_lambda_loss_matches_st(st_losses, case, wrap_st, weighting, k, reduction_log):
    batch, table = case(RAGGED, seed=list(SCHEMES).index(weighting) * 10 + (k or 0) + (reduction_log == "natural") * 5)
    scheme = getattr(st_losses, SCHEMES[weighting])()
    theirs = st_losses.LambdaLoss(wrap_st(table), weighting_scheme=scheme, k=k, reduction_log=reduction_log)
    ours = losses.LambdaLoss(weighting=weighting, k=k, reduction_log=reduction_log)
    check_parity(table, lambda: ours(table, batch), st_listwise_call(theirs, batch))
    check_parity(
        table,
        functional_call(F.lambda_loss, table, batch, weighting=weighting, k=k, reduction_log=reduction_log),
        st_listwise_call(theirs, batch),
    )


@pytest.mark.parametrize("sigma,mu", [(0.5, 10.0), (2.0, 3.0)])
def test_lambda_loss_sigma_mu_match_st(st_losses, case, wrap_st, sigma, mu):
    batch, table = case(RAGGED, seed=7)
    theirs = st_losses.LambdaLoss(wrap_st(table), weighting_scheme=st_losses.NDCGLoss2PPScheme(mu=mu), sigma=sigma)
    ours = losses.get_loss("lambda", sigma=sigma, mu=mu)
    check_parity(table, lambda: ours(table, batch), st_listwise_call(theirs, batch))


def test_lambda_loss_default_matches_st_default(st_losses, case, wrap_st):
    batch, table = case([3, 6, 1, 5], seed=11, labels="binary")
    theirs = st_losses.LambdaLoss(wrap_st(table))
    check_parity(table, lambda: losses.get_loss("lambda_loss")(table, batch), st_listwise_call(theirs, batch))


def test_lambda_loss_real_valued_labels_match_st(st_losses, case, wrap_st):
    batch, table = case(RAGGED, seed=5, labels="distinct")  # labels up to ~7 -> large gains
    theirs = st_losses.LambdaLoss(wrap_st(table), k=4)
    check_parity(table, lambda: losses.LambdaLoss(k=4)(table, batch), st_listwise_call(theirs, batch))


@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("sigma", [1.0, 0.7])
@pytest.mark.parametrize("reduction_log", ["natural", "binary"])
def test_ranknet_matches_st(st_losses, case, wrap_st, k, sigma, reduction_log):
    batch, table = case(RAGGED, seed=3)
    theirs = st_losses.RankNetLoss(wrap_st(table), k=k, sigma=sigma, reduction_log=reduction_log)
    ours = losses.RankNetLoss(sigma=sigma, k=k, reduction_log=reduction_log)
    check_parity(table, lambda: ours(table, batch), st_listwise_call(theirs, batch))
    check_parity(
        table,
        functional_call(F.ranknet, table, batch, sigma=sigma, k=k, reduction_log=reduction_log),
        st_listwise_call(theirs, batch),
    )


def test_ranknet_default_matches_st_default(st_losses, case, wrap_st):
    # Both defaults use log base 2: the same recipe gives the same loss and gradient.
    batch, table = case(RAGGED, seed=21)
    theirs = st_losses.RankNetLoss(wrap_st(table))
    check_parity(table, lambda: losses.get_loss("ranknet")(table, batch), st_listwise_call(theirs, batch))
    check_parity(table, functional_call(F.ranknet, table, batch), st_listwise_call(theirs, batch))


@pytest.mark.parametrize("labels", ["graded", "distinct", "teacher"])
def test_listnet_matches_st(st_losses, case, wrap_st, labels):
    batch, table = case(RAGGED, seed=4, labels=labels)
    theirs = st_losses.ListNetLoss(wrap_st(table))
    check_parity(table, lambda: losses.ListNetLoss()(table, batch), st_listwise_call(theirs, batch))
    check_parity(table, functional_call(F.listnet, table, batch), st_listwise_call(theirs, batch))


def test_listmle_matches_st_sorting_by_labels(st_losses, case, wrap_st):
    # Distinct labels: ST's (unstable) sort and ours agree on the order.
    batch, table = case(RAGGED, seed=8, labels="distinct")
    theirs = st_losses.ListMLELoss(wrap_st(table), respect_input_order=False)
    check_parity(table, lambda: losses.ListMLELoss()(table, batch), st_listwise_call(theirs, batch))
    check_parity(table, functional_call(F.listmle, table, batch), st_listwise_call(theirs, batch))


def test_listmle_ties_keep_input_order_like_st_input_order(st_losses, case, wrap_st):
    # Labels already non-increasing with ties: a stable sort is the identity, which is exactly
    # ST's respect_input_order=True.
    batch, table = case(RAGGED, seed=9, labels="sorted_ties")
    assert any(len(set(row)) < len(row) for row in batch["labels"])
    theirs = st_losses.ListMLELoss(wrap_st(table), respect_input_order=True)
    check_parity(table, lambda: losses.ListMLELoss()(table, batch), st_listwise_call(theirs, batch))


@pytest.mark.parametrize("labels,respect", [("distinct", False), ("sorted_ties", True)])
def test_plistmle_default_weight_matches_st(st_losses, case, wrap_st, labels, respect):
    batch, table = case(RAGGED, seed=10, labels=labels)
    theirs = st_losses.PListMLELoss(
        wrap_st(table), lambda_weight=st_losses.PListMLELambdaWeight(), respect_input_order=respect
    )
    check_parity(table, lambda: losses.PListMLELoss()(table, batch), st_listwise_call(theirs, batch))
    check_parity(table, functional_call(F.plistmle, table, batch), st_listwise_call(theirs, batch))


def test_plistmle_custom_weight_matches_st(st_losses, case, wrap_st):
    def discount(mask):
        ranks = mask.cumsum(dim=-1)
        return (1.0 / torch.log1p(ranks.float())).masked_fill(~mask, 0)

    batch, table = case(RAGGED, seed=12, labels="distinct")
    theirs = st_losses.PListMLELoss(
        wrap_st(table), lambda_weight=st_losses.PListMLELambdaWeight(rank_discount_fn=discount),
        respect_input_order=False,
    )
    ours = losses.get_loss("plistmle", lambda_weight=discount)
    check_parity(table, lambda: ours(table, batch), st_listwise_call(theirs, batch))


def test_plistmle_without_weight_matches_st_listmle(st_losses, case, wrap_st):
    batch, table = case(RAGGED, seed=13, labels="distinct")
    theirs = st_losses.PListMLELoss(wrap_st(table), lambda_weight=None, respect_input_order=False)
    check_parity(table, lambda: losses.PListMLELoss(lambda_weight=None)(table, batch), st_listwise_call(theirs, batch))


def test_plistmle_long_list_matches_st(st_losses, case, wrap_st):
    # > 127 documents: the default weights are rescaled to stay finite.
    batch, table = case([150, 40], seed=14, labels="distinct", scale=0.5)
    theirs = st_losses.PListMLELoss(wrap_st(table), respect_input_order=False)
    check_parity(table, lambda: losses.PListMLELoss()(table, batch), st_listwise_call(theirs, batch))


# ---------------------------------------------------------------- pointwise / distillation


def flat_columns(batch):
    queries = [q for q, plist in zip(batch["queries"], batch["passages"]) for _ in plist]
    passages = [p for plist in batch["passages"] for p in plist]
    labels = torch.tensor([x for row in batch["labels"] for x in row])
    return [queries, passages], labels


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_matches_st(st_losses, case, wrap_st, pos_weight):
    batch, table = case(RAGGED, seed=15, labels="binary")
    inputs, labels = flat_columns(batch)
    st_pw = None if pos_weight is None else torch.tensor(pos_weight)
    theirs = st_losses.BinaryCrossEntropyLoss(wrap_st(table), pos_weight=st_pw)
    ours = losses.get_loss("bce", pos_weight=pos_weight)
    check_parity(table, lambda: ours(table, batch), lambda: theirs(inputs, labels))


def test_mse_matches_st(st_losses, case, wrap_st):
    batch, table = case(RAGGED, seed=16, labels="teacher")
    inputs, labels = flat_columns(batch)
    theirs = st_losses.MSELoss(wrap_st(table))
    check_parity(table, lambda: losses.MSELoss()(table, batch), lambda: theirs(inputs, labels))


@pytest.mark.parametrize("label_form", ["scores", "margins"])
def test_margin_mse_matches_st(st_losses, case, wrap_st, label_form):
    batch, table = case([4, 4, 4], seed=17, labels="teacher")  # ST needs equal columns
    columns = [batch["queries"]] + [list(col) for col in zip(*batch["passages"])]
    teacher = torch.tensor(batch["labels"])
    st_labels = teacher if label_form == "scores" else teacher[:, :1] - teacher[:, 1:]
    theirs = st_losses.MarginMSELoss(wrap_st(table))
    check_parity(table, lambda: losses.MarginMSELoss()(table, batch), lambda: theirs(columns, st_labels))


def test_margin_mse_ragged_equals_st_per_row_weighting(st_losses, case, wrap_st):
    # With unequal negatives, crossrank averages over all real (positive, negative) pairs; that
    # equals ST's value on each row weighted by its number of negatives.
    batch, table = case([4, 2, 3], seed=18, labels="teacher")
    ours = losses.MarginMSELoss()(table, batch).item()
    total, count = 0.0, 0
    for q, plist, row in zip(batch["queries"], batch["passages"], batch["labels"]):
        theirs = st_losses.MarginMSELoss(wrap_st(table))
        value = theirs([[q]] + [[p] for p in plist], torch.tensor([row])).item()
        total += value * (len(plist) - 1)
        count += len(plist) - 1
    assert abs(ours - total / count) < TOL


# ---------------------------------------------------------------- multiple negatives ranking


def mnrl_case(case, hard=2, n_queries=4, seed=19):
    batch, table = case([1 + hard] * n_queries, seed=seed)
    columns = [batch["queries"]] + [list(col) for col in zip(*batch["passages"])]
    return batch, table, columns


@pytest.mark.parametrize("hard", [0, 2])
@pytest.mark.parametrize("num_negatives", [None, 50])  # 50 >= pool: all in-batch negatives
@pytest.mark.parametrize("scale,activation,st_activation", [(10.0, "sigmoid", "sigmoid"), (5.0, None, None)])
def test_mnrl_matches_st(st_losses, case, wrap_st, hard, num_negatives, scale, activation, st_activation):
    batch, table, columns = mnrl_case(case, hard=hard)
    st_act = torch.nn.Sigmoid() if st_activation == "sigmoid" else None
    theirs = st_losses.MultipleNegativesRankingLoss(
        wrap_st(table), num_negatives=num_negatives, scale=scale, activation_fn=st_act
    )
    ours = losses.MultipleNegativesRankingLoss(scale=scale, num_negatives=num_negatives, activation=activation)
    check_parity(table, lambda: ours(table, batch), lambda: theirs(columns, None))


def test_cached_mnrl_matches_st_cached(st_losses, case, wrap_st):
    batch, table, columns = mnrl_case(case, hard=1, n_queries=5, seed=20)
    theirs = st_losses.CachedMultipleNegativesRankingLoss(wrap_st(table), num_negatives=None, mini_batch_size=3)
    ours = losses.get_loss("cached_mnrl", num_negatives=None, mini_batch_size=4)
    check_parity(table, lambda: ours(table, batch), lambda: theirs(columns, None))
