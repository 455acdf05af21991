"""The content prior's validation grid: the (weight, rarity) points ``content_prior: valid`` and
``content_prior_rarity: valid`` try, how they are searched, and the name each point's figures
are kept under. Plain Python, so the run files' writers (:mod:`recbole_tpad.quick_start`,
:mod:`recbole_tpad.benchmark.content_prior`) and their readers (:mod:`recbole_tpad.benchmark.report`
and :mod:`recbole_tpad.benchmark.claim`, which need no model code) share one spelling.
"""

#: content_prior: valid: the weights tried on the validation split after training
CONTENT_PRIOR_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: content_prior_rarity: valid: the exponents tried with them
CONTENT_PRIOR_RARITIES = (0.0, 0.25, 0.5, 1.0)


def prior_point(weight, rarity=0.0):
    """The name of a grid point, ``"4/0.25"`` (weight/rarity): the key of its figures in the run
    files, the content-prior results and the claims that read them."""
    return f"{weight:g}/{rarity or 0:g}"


def search_content_prior(evaluate, weights, rarities, climb=True):
    """The validation search of ``content_prior: valid`` (and ``content_prior_rarity: valid``):
    for each rarity, the weights in increasing order until the score falls (it rises to one
    peak and falls after it, so the rest would fall further); weight 0 is the same model for
    every rarity and is evaluated once. ``climb=False`` evaluates every weight: a choice under
    a constraint (a cold-recall floor) may lie past the score's peak. ``evaluate(weight,
    rarity)`` returns ``(score, anything)``. Returns ``(chosen (weight, rarity), [((weight,
    rarity), score, anything)])``: the best score, the smaller weight and rarity on a tie."""
    tried = []
    for rarity in rarities:
        previous = None
        for weight in weights:
            if not weight and rarity != rarities[0]:
                continue  # the model's own scores: already tried
            score, payload = evaluate(weight, rarity)
            tried.append(((weight, rarity), score, payload))
            if climb and previous is not None and score < previous:
                break
            previous = score
    best = max(tried, key=lambda row: (row[1], -row[0][0], -row[0][1]))
    return best[0], tried
