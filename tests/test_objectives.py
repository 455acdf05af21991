"""The stage-2 objective's ablation switches: a switched-off term is not computed and sends no
gradient to the parts only it trains; a switched-on term does."""

import pytest
import torch

from recbole_tpad.distill.objectives import TransitionDistillation, last_rows

HIDDEN, DIM, UNIQUE, BATCH = 12, 6, 10, 4


def stage2_terms(use_hmie, use_amie):
    torch.manual_seed(0)
    objectives = TransitionDistillation(HIDDEN, DIM, estimator_hidden=8)
    h_t, h_k, z_k1 = (torch.randn(UNIQUE, HIDDEN) for _ in range(3))
    session = torch.randn(BATCH, HIDDEN)
    prefix_index = torch.randint(0, UNIQUE, (BATCH, 3))
    prefix_mask = torch.ones(BATCH, 3, dtype=torch.bool)
    out = objectives.losses(h_t, h_k, z_k1, session, prefix_index, prefix_mask,
                            torch.arange(BATCH), use_hmie=use_hmie, use_amie=use_amie)
    (out["next"] + out["hmie"] + out["amie"]).backward()
    return objectives, out


def has_gradient(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("use_amie", [True, False])
def test_amie_switch_decides_whether_its_estimators_and_z_u_head_learn(use_amie):
    objectives, out = stage2_terms(use_hmie=True, use_amie=use_amie)
    assert has_gradient(objectives.amie_t) is use_amie
    assert has_gradient(objectives.amie_k) is use_amie
    assert has_gradient(objectives.head_u) is use_amie  # z_U is trained by AMIE alone
    if not use_amie:
        assert out["amie"].grad_fn is None and float(out["amie"]) == 0.0


@pytest.mark.parametrize("use_hmie", [True, False])
def test_hmie_switch_decides_whether_z_k_is_pushed_away_from_z_t(use_hmie):
    objectives, out = stage2_terms(use_hmie=use_hmie, use_amie=False)
    # with AMIE off, the knowledge head is reached by the CLUB bounds only
    assert has_gradient(objectives.head_k) is use_hmie
    if not use_hmie:
        assert out["hmie"].grad_fn is None and float(out["hmie"]) == 0.0
    # CLUB's own networks are not stepped by the main loss (they are fitted in alternation)
    main = {id(p) for p in objectives.main_parameters()}
    assert not main & {id(p) for p in objectives.club_parameters()}


def test_the_next_item_term_always_trains_the_transfer_head():
    objectives, _ = stage2_terms(use_hmie=False, use_amie=False)
    assert has_gradient(objectives.head_t) and has_gradient(objectives.session_out)


def test_in_batch_scores_plus_log_q_rank_the_whole_catalogue():
    """The held-out report's correction: next-item InfoNCE with in-batch negatives learns
    log p(j|s) - log q(j), so ranking the catalogue by p(j|s) must add log q back. Here each
    context prefers its own group of items, and items differ in popularity (Zipf): the score
    alone cannot tell a group's popular items from its rare ones; the corrected one can."""
    torch.manual_seed(0)
    contexts, items, group, k = 8, 64, 8, 4
    popularity = 1.0 / torch.arange(1, items + 1).float()[torch.randperm(items)]
    in_group = torch.zeros(contexts, items, dtype=torch.bool)
    for c in range(contexts):
        in_group[c, c * group:(c + 1) * group] = True
    p = popularity * torch.where(in_group, 20.0, 1.0)
    p = p / p.sum(1, keepdim=True)  # p(j | context)
    q = p.mean(0)  # the target distribution when contexts are drawn uniformly
    objectives = TransitionDistillation(16, 16, estimator_hidden=8)
    context_state, item_z = torch.nn.Embedding(contexts, 16), torch.nn.Embedding(items, 16)
    params = [*context_state.parameters(), *item_z.parameters(), *objectives.session_out.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.03)
    for _ in range(400):
        c = torch.randint(contexts, (32,))
        j = torch.multinomial(p[c], 1).squeeze(1)
        loss = objectives.next_item_loss(objectives.query(context_state(c)), item_z(j))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def recall(scores):  # expected Recall@k over p(j | context)
        top = scores.topk(k, dim=1).indices
        return float(p.gather(1, top).sum(1).mean())

    with torch.no_grad():
        query = objectives.query(context_state.weight)
        scores = objectives.next_item_scores(query, item_z.weight)
        corrected = objectives.next_item_scores(query, item_z.weight, q.log())
    best = recall(p)
    assert recall(corrected) > 0.9 * best, (recall(corrected), best)
    assert recall(corrected) > recall(scores) + 0.05, (recall(corrected), recall(scores))
    assert recall(corrected) > recall(q.expand(contexts, -1)) + 0.1  # it learned the contexts


def test_last_item_query_starts_at_the_last_items_content_and_learns_a_correction():
    """``session_query: last_item``: before training a session asks for items like its last
    one (cosine of z_T / temperature); the session state's correction still learns."""
    # the last item of left-aligned, right-padded prefixes of different lengths
    index = torch.tensor([[4, 7, 0], [2, 0, 0], [5, 6, 1]])
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    assert last_rows(index, mask).tolist() == [7, 2, 1]
    with pytest.raises(ValueError, match="session_query='mean'"):
        TransitionDistillation(HIDDEN, DIM, session_query="mean")

    torch.manual_seed(0)
    objectives = TransitionDistillation(HIDDEN, DIM, estimator_hidden=8, session_query="last_item")
    h_t, h_k, z_k1 = (torch.randn(UNIQUE, HIDDEN) for _ in range(3))
    session = torch.randn(3, HIDDEN)
    z_t = objectives.features(h_t, "zT")
    scores = objectives.next_item_scores(objectives.query(session, z_t[last_rows(index, mask)]), z_t)
    expected = torch.nn.functional.normalize(z_t[[7, 2, 1]], dim=-1) @ \
        torch.nn.functional.normalize(z_t, dim=-1).t() / objectives.temperature
    assert torch.allclose(scores, expected, atol=1e-5)
    assert scores.argmax(1).tolist() == [7, 2, 1]  # an item is most like itself
    with pytest.raises(ValueError, match="needs the last prefix item"):
        objectives.query(session)
    out = objectives.losses(h_t, h_k, z_k1, session, index, mask, torch.tensor([3, 8, 9]),
                            use_hmie=False, use_amie=False)
    out["next"].backward()
    assert has_gradient(objectives.session_out) and has_gradient(objectives.head_t)


def test_the_teacher_term_aligns_z_t_with_the_teacher_and_skips_items_without_a_vector():
    """Teacher vectors that are a hidden function of the item states: training the transfer head
    on the teacher term alone makes each item pick its own teacher vector (loss far below chance,
    log of the items), and the rows marked unknown take no part."""
    torch.manual_seed(0)
    n, teacher_dim = 64, 5
    objectives = TransitionDistillation(HIDDEN, DIM, estimator_hidden=8, teacher_dim=teacher_dim)
    h = torch.randn(n, HIDDEN)
    teacher = torch.tanh(h @ torch.randn(HIDDEN, teacher_dim))
    known = torch.ones(n, dtype=torch.bool)
    known[:4] = False
    z_t = lambda: objectives.head_t(objectives.standardize(h))  # noqa: E731
    first = objectives.teacher_loss(z_t(), teacher, known).item()
    moved = teacher.clone()
    moved[:4] = 100.0  # unknown rows: their values do not count
    assert objectives.teacher_loss(z_t(), moved, known).item() == pytest.approx(first)
    optimizer = torch.optim.Adam(objectives.main_parameters(), lr=0.02)
    for _ in range(300):
        loss = objectives.teacher_loss(z_t(), teacher, known)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 0.8 * torch.log(torch.tensor(60.0))  # about chance at the start
    assert loss.item() < 0.5 * first, (first, loss.item())
    assert objectives.teacher_loss(z_t(), teacher, torch.zeros(n, dtype=torch.bool)) == 0
    with pytest.raises(ValueError, match="teacher_dim"):
        TransitionDistillation(HIDDEN, DIM).teacher_loss(z_t(), teacher, known)
    # through losses(): the term is there only with a teacher
    session = torch.randn(BATCH, HIDDEN)
    prefix = torch.randint(0, n, (BATCH, 3))
    mask = torch.ones(BATCH, 3, dtype=torch.bool)
    out = objectives.losses(h, h, h, session, prefix, mask, torch.arange(BATCH), teacher=teacher,
                            teacher_known=known)
    assert out["teacher"].item() == pytest.approx(loss.item(), rel=0.05)
    assert "teacher" not in objectives.losses(h, h, h, session, prefix, mask, torch.arange(BATCH))
