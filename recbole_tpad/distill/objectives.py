"""Stage-2 losses of TPAD: next-item InfoNCE, HMIE (CLUB upper bounds, item and session level)
and AMIE (InfoNCE lower bounds aligning z_U with z_T and with the stage-1 z_K).

Given the hidden states the backbone produced for a batch, this module owns every trainable
piece outside the LLM: the heads (h -> z_K, z_T, z_U), the soft-token projection that feeds
item states to the Transfer-MLLM as a session, and the estimators. CLUB's variational
networks are fitted by their own optimizer (:meth:`club_parameters`) in alternation with the
main loss, as CLUB requires; everything else trains on :meth:`main_parameters`.
"""

import torch
from torch import nn
from torch.nn import functional as F

from recbole_tpad.distill.estimators import CLUB, InfoNCE


def last_rows(prefix_index, prefix_mask):
    """``[B]`` the row of each prefix's last item (prefixes are left-aligned, padded on the right)."""
    return prefix_index.gather(1, (prefix_mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)


#: What a session asks for its next item with (``session_query`` in the pretrain yaml).
SESSION_QUERIES = ("state", "last_item")


class TransitionDistillation(nn.Module):
    """Args:
        session_query: ``state``: the Transfer-MLLM's session state through ``session_out``;
            ``last_item``: the last prefix item's own z_T plus that, ``session_out`` starting at
            zero, so stage 2 begins at the content similarity of the last item (which on
            amazon-sports already ranks next items above popularity) and learns the transition
            on top, instead of beginning at chance.
        teacher_dim: the size of a collaborative teacher's item vectors
            (:mod:`recbole_tpad.distill.teacher`), or ``None`` without one.
    """

    def __init__(self, hidden, dim, estimator_hidden=128, temperature=0.1, session_query="state",
                 teacher_dim=None):
        super().__init__()
        if session_query not in SESSION_QUERIES:
            raise ValueError(f"session_query={session_query!r}: use one of {', '.join(SESSION_QUERIES)}")
        self.session_query = session_query
        self.head_k = nn.Linear(hidden, dim)
        self.head_t = nn.Linear(hidden, dim)
        self.head_u = nn.Linear(hidden, dim)
        self.soft_token = nn.Linear(hidden, hidden)  # item state -> the LLM's layer input
        self.session_out = nn.Linear(hidden, dim)    # session state -> the z_T space
        self.amie_t = InfoNCE(dim, dim, estimator_hidden)
        self.amie_k = InfoNCE(dim, hidden, estimator_hidden)
        self.club_item = CLUB(dim, dim, estimator_hidden)
        self.club_session = CLUB(dim, dim, estimator_hidden)
        # the teacher's vectors -> the z_T space (linear, so the teacher's geometry carries over)
        self.teacher_proj = nn.Linear(teacher_dim, dim, bias=False) if teacher_dim else None
        self.temperature = temperature
        # LLM states carry a few huge dimensions; the heads read them standardised with the
        # stage-1 statistics of all items (set_standardization), or not at all before that.
        self.register_buffer("h_mean", torch.zeros(hidden))
        self.register_buffer("h_std", torch.ones(hidden))
        nn.init.eye_(self.soft_token.weight)
        nn.init.zeros_(self.soft_token.bias)
        if session_query == "last_item":
            nn.init.zeros_(self.session_out.weight)
            nn.init.zeros_(self.session_out.bias)

    def set_standardization(self, states):
        self.h_mean.copy_(states.mean(0))
        self.h_std.copy_(states.std(0).clamp(min=1e-3))

    def standardize(self, h):
        return (h - self.h_mean) / self.h_std

    def club_parameters(self):
        return list(self.club_item.parameters()) + list(self.club_session.parameters())

    def main_parameters(self):
        club = {id(p) for p in self.club_parameters()}
        return [p for p in self.parameters() if id(p) not in club]

    def features(self, h, view):
        """The written feature of states ``h``: ``z_U``/``z_T`` through their head, standardised."""
        head = {"zU": self.head_u, "zT": self.head_t, "zK": self.head_k}[view]
        return head(self.standardize(h))

    def query(self, session_state, last_z=None):
        """``[B, dim]`` what each session asks for, in the z_T space: ``session_out`` of its
        state, plus (``session_query: last_item``) ``last_z``, its last item's z_T."""
        u = self.session_out(session_state)
        if self.session_query == "last_item":
            if last_z is None:
                raise ValueError("session_query=last_item needs the last prefix item's z_T (last_z)")
            u = u + last_z
        return u

    def next_item_scores(self, query, item_z, log_prior=None):
        """``[B, N]`` next-item scores of session queries (:meth:`query`) against items
        (cosine / temperature).

        Trained by in-batch InfoNCE, whose negatives are other sessions' targets (drawn with
        the target distribution q), the score estimates log p(j | s) - log q(j) + const, a
        pointwise mutual information (Yi et al., RecSys 2019). Ranking the whole catalogue by
        p(j | s) therefore adds ``log_prior`` = log q(j) back."""
        scores = F.normalize(query, dim=-1) @ F.normalize(item_z, dim=-1).t() / self.temperature
        return scores if log_prior is None else scores + log_prior

    def next_item_loss(self, query, target_z):
        """InfoNCE over in-batch targets: the session must pick its own next item."""
        scores = self.next_item_scores(query, target_z)
        return F.cross_entropy(scores, torch.arange(len(scores), device=scores.device))

    def teacher_loss(self, z_t, teacher, known):
        """InfoNCE aligning items' z_T with their teacher vectors (cosine / temperature, the
        next-item score's form): each item must pick its own teacher vector among the batch's.
        Only rows with a teacher vector (``known``) take part; fewer than two: zero."""
        if self.teacher_proj is None:
            raise ValueError("this TransitionDistillation was built without teacher_dim")
        z_t, target = z_t[known], self.teacher_proj(teacher[known])
        if len(z_t) < 2:
            return z_t.new_zeros(())
        return self.next_item_loss(z_t, target)

    def losses(self, h_t, h_k, z_k1, session_state, prefix_index, prefix_mask, target_index,
               use_hmie=True, use_amie=True, lambda_keep=0.5, teacher=None, teacher_known=None):
        """All stage-2 terms for one batch.

        Args:
            h_t, h_k: ``[U, hidden]`` states of the batch's unique items under the Transfer and
                Knowledge adapters; z_k1: ``[U, hidden]`` their stage-1 knowledge states.
            session_state: ``[B, hidden]`` Transfer-MLLM states of the session prefixes.
            prefix_index, prefix_mask: ``[B, P]`` rows of each prefix's items in ``h_*``.
            target_index: ``[B]`` row of each session's next item.
            teacher, teacher_known: ``[U, teacher_dim]`` the items' teacher vectors and ``[U]``
                which of them have one (``None``: no teacher term).
        """
        h_t, h_k = self.standardize(h_t), self.standardize(h_k)
        z_k1 = self.standardize(z_k1)
        z_t, z_k, z_u = self.head_t(h_t), self.head_k(h_k), self.head_u(h_k)
        u_t = self.query(session_state, z_t[last_rows(prefix_index, prefix_mask)])
        out = {"next": self.next_item_loss(u_t, z_t[target_index])}
        if teacher is not None:
            out["teacher"] = self.teacher_loss(z_t, teacher, teacher_known)
        weights = prefix_mask.float() / prefix_mask.float().sum(1, keepdim=True).clamp(min=1)
        u_k = (z_k[prefix_index] * weights.unsqueeze(-1)).sum(1)  # pooled knowledge of the prefix
        # CLUB reads unit vectors: minimising it cannot then run away by rescaling the features
        pairs = ((F.normalize(z_t, dim=-1), F.normalize(z_k, dim=-1)),
                 (F.normalize(u_t, dim=-1), F.normalize(u_k, dim=-1)))
        out["hmie_item"] = self.club_item(*pairs[0]) if use_hmie else z_t.new_zeros(())
        out["hmie_session"] = self.club_session(*pairs[1]) if use_hmie else z_t.new_zeros(())
        if use_amie:
            out["amie_t"] = self.amie_t(z_u, z_t)
            out["amie_k"] = self.amie_k(z_u, z_k1)
        else:
            out["amie_t"] = out["amie_k"] = z_t.new_zeros(())
        out["amie"] = -(out["amie_t"] + lambda_keep * out["amie_k"])
        out["hmie"] = out["hmie_item"] + out["hmie_session"]
        # for the CLUB fit (alternation): detached pairs
        out["pairs"] = tuple((x.detach(), y.detach()) for x, y in pairs)
        return out

    def club_fit_loss(self, pairs):
        (zt, zk), (ut, uk) = pairs
        return self.club_item.learning_loss(zt, zk) + self.club_session.learning_loss(ut, uk)
