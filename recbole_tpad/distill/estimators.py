"""Mutual-information estimators used by TPAD's alignment module, and nothing else.

* :class:`InfoNCE`: the lower bound ``I(X;Y) >= log N + E[log softmax_j f(x_i, y_j)]`` (van den
  Oord et al., 2018) with a learned separable critic; AMIE maximises it to *align* views.
  It can never exceed ``log N`` (N = batch size).
* :class:`CLUB`: the contrastive log-ratio upper bound (Cheng et al., ICML 2020) with a
  Gaussian variational ``q(y|x)``; HMIE minimises it to *disentangle* views. ``q`` is fitted by
  maximum likelihood (:meth:`CLUB.learning_loss`) in alternation with the main loss.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def _mlp(in_dim, hidden, out_dim):
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class InfoNCE(nn.Module):
    """InfoNCE lower bound with critic ``f(x, y) = <g(x), h(y)> / temperature``."""

    def __init__(self, x_dim, y_dim, hidden=128, embed=64, temperature=1.0):
        super().__init__()
        self.g = _mlp(x_dim, hidden, embed)
        self.h = _mlp(y_dim, hidden, embed)
        self.temperature = temperature

    def scores(self, x, y):
        return self.g(x) @ self.h(y).t() / self.temperature  # [N, N]; diagonal = positive pairs

    def forward(self, x, y):
        """The bound's value on a batch of paired samples (nats); maximise it to align."""
        scores = self.scores(x, y)
        labels = torch.arange(len(x), device=x.device)
        return math.log(len(x)) - F.cross_entropy(scores, labels)


class CLUB(nn.Module):
    """CLUB upper bound with ``q(y|x) = N(mu(x), diag(exp(logvar(x))))``."""

    def __init__(self, x_dim, y_dim, hidden=128):
        super().__init__()
        self.mu = _mlp(x_dim, hidden, y_dim)
        self.logvar = nn.Sequential(_mlp(x_dim, hidden, y_dim), nn.Tanh())

    def log_likelihood(self, x, y):
        """``log q(y|x)`` per pair, up to a constant: ``[N]``."""
        mu, logvar = self.mu(x), self.logvar(x)
        return (-(y - mu) ** 2 / logvar.exp() / 2 - logvar / 2).sum(-1)

    def learning_loss(self, x, y):
        """Negative log-likelihood of the pairs: minimise it to fit ``q`` (x, y detached by the caller)."""
        return -self.log_likelihood(x, y).mean()

    def forward(self, x, y):
        """The bound's value (nats): ``E_p(x,y)[log q(y|x)] - E_p(x)E_p(y)[log q(y|x)]``."""
        mu, logvar = self.mu(x), self.logvar(x)
        positive = -((y - mu) ** 2 / logvar.exp() / 2).sum(-1)
        # all pairs (x_i, y_j): mean over j of the squared error, without an N x N x d tensor
        y_mean, y_sq_mean = y.mean(0), (y ** 2).mean(0)
        all_pairs = -((y_sq_mean - 2 * mu * y_mean + mu ** 2) / logvar.exp() / 2).sum(-1)
        return (positive - all_pairs).mean()
