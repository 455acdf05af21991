"""InfoNCE and CLUB against correlated Gaussians whose mutual information is known:
I(X;Y) = -d/2 * log(1 - rho^2) for d independent pairs with correlation rho."""

import math

import pytest
import torch

from recbole_tpad.distill.estimators import CLUB, InfoNCE

DIM = 4


def gaussian_pairs(n, rho, generator):
    x = torch.randn(n, DIM, generator=generator)
    noise = torch.randn(n, DIM, generator=generator)
    return x, rho * x + math.sqrt(1 - rho ** 2) * noise


def true_mi(rho):
    return -DIM / 2 * math.log(1 - rho ** 2)


def train(estimator, loss_of, rho, steps, batch=128, seed=0):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=3e-3)
    for _ in range(steps):
        x, y = gaussian_pairs(batch, rho, generator)
        optimizer.zero_grad()
        loss_of(estimator, x, y).backward()
        optimizer.step()
    with torch.no_grad():  # evaluate on fresh samples, never the training batches
        values = [estimator(*gaussian_pairs(batch, rho, generator)).item() for _ in range(20)]
    return sum(values) / len(values)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_infonce_tracks_mi_below_log_batch(rho):
    estimate = train(InfoNCE(DIM, DIM), lambda e, x, y: -e(x, y), rho, steps=400)
    truth = true_mi(rho)
    assert estimate <= math.log(128) + 1e-6
    assert estimate <= truth + 0.15  # a lower bound, up to sampling noise
    assert estimate >= 0.7 * truth  # and a tight one in this range (truth well below log 128)


def test_infonce_saturates_at_log_batch():
    estimate = train(InfoNCE(DIM, DIM), lambda e, x, y: -e(x, y), 0.999, steps=400, batch=16)
    assert math.log(16) - 0.4 < estimate <= math.log(16) + 1e-6  # true MI 12.4 nats is out of reach


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_club_upper_bounds_mi(rho):
    """With q(y|x) = p(y|x) = N(rho x, 1 - rho^2), CLUB equals d * rho^2 / (1 - rho^2): above the
    true MI (1.33 vs 0.58 nats at rho 0.5, 7.1 vs 2.0 at rho 0.8). The fitted estimator must
    stay above the truth and reach that analytic value."""
    estimate = train(CLUB(DIM, DIM), lambda e, x, y: e.learning_loss(x, y), rho, steps=400)
    analytic = DIM * rho ** 2 / (1 - rho ** 2)
    assert estimate >= true_mi(rho) - 0.15
    assert abs(estimate - analytic) <= 0.15 * analytic + 0.1


def test_both_near_zero_on_independent_samples():
    nce = train(InfoNCE(DIM, DIM), lambda e, x, y: -e(x, y), 0.0, steps=300)
    club = train(CLUB(DIM, DIM), lambda e, x, y: e.learning_loss(x, y), 0.0, steps=300)
    assert abs(nce) < 0.1 and abs(club) < 0.1


def test_club_gradient_lowers_the_mi_it_measures():
    """HMIE's use: with q fitted, minimising CLUB through an encoder makes its outputs carry less
    information about x."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    club, encoder = CLUB(DIM, DIM), torch.nn.Linear(DIM, DIM)
    q_opt = torch.optim.Adam(club.parameters(), lr=3e-3)
    e_opt = torch.optim.Adam(encoder.parameters(), lr=3e-3)
    first = None
    for step in range(400):
        x, noise = gaussian_pairs(128, 0.0, generator)
        y = encoder(x) + 0.3 * noise
        q_opt.zero_grad()
        club.learning_loss(x, y.detach()).backward()
        q_opt.step()
        e_opt.zero_grad()
        bound = club(x, y)
        bound.backward()
        e_opt.step()
        if step == 50:
            first = bound.item()
    assert first > 1.0 and bound.item() < 0.3 * first
