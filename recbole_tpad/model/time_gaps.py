"""``time_gaps``: the time between consecutive items of a sequence as an input of the session
encoder (MLLM-SRec's time awareness; TiSASRec's idea without its relation matrices).

Why: on user histories a same-day purchase and one a year later say different things about what
comes next (a same-day pair is an outfit or a kit, a long gap a new need), and an ID or content
vector carries neither. Each position gets one learned vector for its gap to the item before it,
bucketed on a log scale: ``[0, 1)`` units (with ``time_gap_unit: 86400``, the same day), ``[1,
3)``, ``[3, 7)``, ``[7, 15)``, ... up to ``time_gap_buckets`` buckets (the last one open-ended).
The sequence's first item has its own vector (no item before it), padding none. Only the gaps
inside the history are read, never the time of the item to predict.
"""

import torch
from torch import nn

#: index of the padding positions (a zero vector, no gradient)
PADDING = 0
#: index of each sequence's first item, which has no item before it
FIRST = 1


def time_gap_buckets(times, lengths, unit, n_buckets):
    """``[B, L]`` long: each position's bucket (:data:`PADDING`, :data:`FIRST`, or ``2 + b``
    with ``b = min(floor(log2(1 + gap / unit)), n_buckets - 1)``) from the sequences' times
    ``[B, L]`` (left-aligned, as RecBole builds them) and lengths ``[B]``. A gap below zero
    (times out of order) counts as zero."""
    gaps = (times[:, 1:] - times[:, :-1]).double().clamp(min=0) / unit
    buckets = torch.floor(torch.log2(1 + gaps)).clamp(max=n_buckets - 1).long() + 2
    positions = torch.arange(times.size(1), device=times.device).unsqueeze(0)
    out = torch.full(times.shape, FIRST, dtype=torch.long, device=times.device)
    out[:, 1:] = buckets
    return out.masked_fill(positions >= lengths.unsqueeze(1), PADDING)


class TimeGapEmbedding(nn.Module):
    """One vector per time-gap bucket, added to the item vectors the session encoder reads."""

    def __init__(self, dim, unit=86400.0, n_buckets=12):
        super().__init__()
        if not unit or unit <= 0:
            raise ValueError(f"time_gap_unit={unit!r}: give the length of one unit in the time "
                             "field's scale, > 0 (86400 for seconds: gaps counted in days)")
        if int(n_buckets) != n_buckets or n_buckets < 1:
            raise ValueError(f"time_gap_buckets={n_buckets!r}: give a whole number >= 1 (12 "
                             "reaches gaps of 2^11 units, about 5.6 years in days)")
        self.unit, self.n_buckets = float(unit), int(n_buckets)
        self.embedding = nn.Embedding(self.n_buckets + 2, dim, padding_idx=PADDING)

    def reset_padding(self):
        """Zero the padding vector again (a model-wide weight initialisation draws it)."""
        with torch.no_grad():
            self.embedding.weight[PADDING].zero_()

    def forward(self, times, lengths):
        return self.embedding(time_gap_buckets(times, lengths, self.unit, self.n_buckets))
