"""Recommend with a trained model: a session of item ids in, the top-K items out.

    rec = Recommender.from_checkpoint("saved/SASRec-....pth")
    rec.recommend(["B000ABC", "B000XYZ"], k=10)          # [Recommendation(item, score, title)]
    rec.recommend_batch([["B000ABC"], ["B000XYZ"]], k=10)

Any checkpoint the plugin's runs write works (TPAD, SASRecPub, RecBole's SASRec, GRU4Rec, ...):
the run is rebuilt from the settings the checkpoint records (:func:`load_data_and_model`, which
reads it with ``weights_only=True``) and scored by the model's own ``full_sort_predict``, so a
session is ranked exactly as in evaluation. Item ids are the dataset's own tokens. An unknown id
is skipped with a warning naming it (``strict=True`` refuses it); a session with no known item
gets the most popular training items, and the result says so. Items added after training are
appended with :meth:`Recommender.add_items` (``--new-items``, :mod:`recbole_tpad.new_items`).
"""

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


class RecommendError(ValueError):
    """A session or request that cannot be answered; the message says why and what to do."""


@dataclass
class Recommendation:
    item: str
    score: float
    title: str = ""


@dataclass
class SessionResult:
    session: list
    items: list
    skipped: list
    fallback: str = ""  # "popularity" when the session held no known item


class Recommender:
    def __init__(self, config, model, dataset, train_dataset, load_seconds=0.0):
        self.config, self.model, self.dataset = config, model.eval(), dataset
        self.load_seconds = load_seconds
        field = config["ITEM_ID_FIELD"]
        self.token_to_id = dataset.field2token_id[field]
        self.id_to_token = dataset.field2id_token[field]
        self.max_length = config["MAX_ITEM_LIST_LENGTH"]
        self.seq_field = field + config["LIST_SUFFIX"]
        self.len_field = config["ITEM_LIST_LENGTH_FIELD"]
        from recbole_tpad.evaluation import training_item_counts

        counts = training_item_counts(train_dataset, config).float()
        counts[0] = -1
        self.popularity = counts
        from dataset_tools.atomic import read_item_table

        items = read_item_table(Path(config["data_path"]), config["dataset"])
        self.titles = {k: v.get("title", "") for k, v in items.items()}
        self._check_feature_table(dataset)

    def _check_feature_table(self, dataset):
        """The feature file on disk must still hold the vectors the checkpoint was trained on:
        new items are encoded by that file's producer, and they must live in the same space.
        A model with ``feature_whitening`` holds its table whitened, so the file is compared
        through the checkpoint's own transform (the float sums of that product may differ in
        their last bits with the thread count: hence a tolerance, far below what a rebuilt
        file changes)."""
        trained = getattr(self.model, "item_features", None)
        current = getattr(dataset, "item_features", None)
        if trained is None or current is None:
            return
        trained = trained.cpu()
        whitening = getattr(self.model, "whitening", None)
        atol, rtol = 1e-6, 1e-5  # a raw table is the file's copy
        if whitening is not None and current.shape == (trained.shape[0], whitening.mean.shape[0]):
            from recbole_tpad.model.layers import features_as_read

            with torch.no_grad():
                current = features_as_read(self.model, current).cpu()
            atol = rtol = 1e-4
        if trained.shape != current.shape or not torch.allclose(trained, current, atol=atol, rtol=rtol):
            from recbole_tpad.data.sources import feature_file

            raise RecommendError(
                f"the feature file {feature_file(self.config)} no longer holds the vectors this "
                "checkpoint was trained on (it was rebuilt with other settings or another "
                "producer since): put back the file it was trained with, or train again on this one")

    @classmethod
    def from_checkpoint(cls, path, data_path=None):
        """Load a checkpoint and its dataset once (the slow part); then recommend many times.
        ``data_path``: the folder that holds the dataset's folder, where the data is no longer
        where the model was trained (another machine, a moved project); the files must be the
        same (their checksum is compared)."""
        from recbole_tpad.quick_start import load_data_and_model

        tic = time.perf_counter()
        config, model, dataset, train_data, _, _ = load_data_and_model(path, data_path)
        from recbole_tpad.evaluation import training_prefixes

        return cls(config, model, dataset, training_prefixes(train_data), time.perf_counter() - tic)

    def add_items(self, path, backbone=None):
        """Add the items of an atomic ``.item`` file (``--new-items``) to the candidates without
        retraining: each is encoded by the producer of the checkpoint's feature table
        (:mod:`recbole_tpad.new_items`) and appended, so it can be recommended and can appear in
        sessions. Only models that score items from features can take them (TPAD with
        ``use_features``, ContentKNN). Returns the ids added."""
        from recbole_tpad.data.features import read_metadata
        from recbole_tpad.data.sources import feature_file
        from recbole_tpad.new_items import encode_new_items, read_new_items

        name = self.config["model"]
        if getattr(self.model, "item_features", None) is None:
            raise RecommendError(
                f"{name} scores items by the ID vectors it trained, so it cannot rank an item it "
                "never saw: new items need a model that reads item features (TPAD with "
                "use_features=True, or ContentKNN)")
        source = feature_file(self.config)
        meta = read_metadata(source)
        items = read_new_items(path, self.config["ITEM_ID_FIELD"], self.token_to_id)
        vectors = encode_new_items(items, meta, self.config["checkpoint_dir"], backbone=backbone)
        first = len(self.id_to_token)
        attributes = getattr(self.dataset, "item_attributes", None)
        attributes = attributes.encode([item.record for item in items]) if attributes else None
        self.model.add_items(torch.from_numpy(vectors), attributes)
        self.id_to_token = list(self.id_to_token) + [item.item_id for item in items]
        self.token_to_id = dict(self.token_to_id, **{item.item_id: first + n
                                                     for n, item in enumerate(items)})
        self.popularity = torch.cat([self.popularity, torch.zeros(len(items))])
        self.titles.update({item.item_id: item.record.get("title", "") for item in items})
        logger.info("added %d new item(s) from %s, encoded as %s's table (%s)", len(items), path,
                    name, meta.get("producer", {}).get("name"))
        return [item.item_id for item in items]

    @property
    def device(self):
        """Where the model's tensors live (the CPU for a model with none): its inputs go there."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return tensors[0].device if tensors else torch.device("cpu")

    def _ids(self, session, strict):
        """The known ids of ``session`` (its last ``MAX_ITEM_LIST_LENGTH``), the unknown tokens,
        and the positions in ``session`` of the ids kept (where their times are)."""
        ids, skipped, positions = [], [], []
        for position, token in enumerate(session):
            token = str(token).strip()
            if token in self.token_to_id and self.token_to_id[token] != 0:
                ids.append(self.token_to_id[token])
                positions.append(position)
            elif strict:
                raise RecommendError(f"unknown item id {token!r}: it is not in dataset "
                                     f"{self.config['dataset']} (drop --strict to skip unknown ids)")
            else:
                skipped.append(token)
        if skipped:
            logger.warning("skipped unknown item id(s) %s: not in dataset %s",
                           ", ".join(repr(t) for t in skipped), self.config["dataset"])
        return ids[-self.max_length:], skipped, positions[-self.max_length:]

    @property
    def reads_times(self):
        """Whether the model reads the time gaps between a session's items (``time_gaps``)."""
        return getattr(self.model, "time_gaps", None) is not None

    def _times(self, sessions, times, kept):
        """``[n, max_length]`` times of the known items, as the sessions' ids are laid out."""
        name = self.config["model"]
        if times is None:
            raise RecommendError(
                f"this {name} reads the time gaps between a session's items (time_gaps: True): "
                "give each session's times, oldest first, in the time field's scale "
                "(recommend(session, times=...); on the command line --times or --times-file)")
        if len(times) != len(sessions) or any(len(t) != len(s) for s, t in zip(sessions, times)):
            raise RecommendError("times: give one time per item of each session, oldest first")
        out = torch.zeros(len(sessions), self.max_length, dtype=torch.float64)
        for row, (session_times, positions) in enumerate(zip(times, kept)):
            try:
                values = [float(session_times[p]) for p in positions]
            except (TypeError, ValueError):
                raise RecommendError(f"times of session {row}: {list(session_times)!r} holds a "
                                     "value that is not a number") from None
            if not all(math.isfinite(v) for v in values):
                raise RecommendError(f"times of session {row}: give finite numbers")
            out[row, :len(values)] = torch.tensor(values, dtype=torch.float64)
        return out

    @torch.no_grad()
    def recommend_batch(self, sessions, k=10, exclude_seen=False, strict=False, times=None):
        """One :class:`SessionResult` per session, in order. ``times``: each session's item
        times (one per item, oldest first), for a model that reads time gaps."""
        from recbole.data.interaction import Interaction

        if not isinstance(k, int) or k < 1:
            raise RecommendError(f"k={k!r}: give a whole number of at least 1")
        parsed = [self._ids(s, strict) for s in sessions]
        all_times = self._times(sessions, times, [kept for _, _, kept in parsed]) \
            if self.reads_times else None
        known = [i for i, (ids, _, _) in enumerate(parsed) if ids]
        scores = torch.empty(len(sessions), len(self.id_to_token))
        if known:
            seqs = torch.zeros(len(known), self.max_length, dtype=torch.long)
            lengths = torch.zeros(len(known), dtype=torch.long)
            for row, i in enumerate(known):
                ids = parsed[i][0]
                seqs[row, :len(ids)] = torch.tensor(ids)
                lengths[row] = len(ids)
            fields = {self.seq_field: seqs, self.len_field: lengths}
            if self.reads_times:
                fields[self.model.time_list_field] = all_times[known]
            batch = Interaction(fields).to(self.device)
            scores[known] = self.model.full_sort_predict(batch).view(len(known), -1).float().cpu()
        results = []
        for i, (ids, skipped, _) in enumerate(parsed):
            row = scores[i] if ids else self.popularity.clone()
            row[0] = -torch.inf
            if exclude_seen and ids:
                row[torch.tensor(ids)] = -torch.inf
            top = torch.topk(row, min(k, len(row) - 1))
            items = [Recommendation(self.id_to_token[j], float(v), self.titles.get(self.id_to_token[j], ""))
                     for v, j in zip(top.values.tolist(), top.indices.tolist()) if v > -torch.inf]
            if not ids:
                logger.warning("session %d has no known item: recommending the most popular items", i)
            results.append(SessionResult(list(sessions[i]), items, skipped, "" if ids else "popularity"))
        return results

    def recommend(self, session, k=10, exclude_seen=False, strict=False, times=None):
        """The top-``k`` :class:`Recommendation` list for one session (item ids, oldest first;
        ``times``: theirs, for a model that reads time gaps)."""
        return self.recommend_batch([session], k, exclude_seen, strict,
                                    None if times is None else [times])[0].items


def _split_lines(path):
    """Each line of ``path`` as its values, separated by commas, spaces or tabs."""
    import re

    with open(path, encoding="utf-8") as handle:
        return [[t for t in re.split(r"[,\s]+", line.strip()) if t] for line in handle]


def read_sessions(path):
    """One session a line: item ids separated by commas, spaces or tabs; blank lines are empty
    sessions (answered from popularity)."""
    return _split_lines(path)


def read_times(path, sessions, sessions_path="the sessions file"):
    """The times of :func:`read_sessions`' sessions: one line a session, one time (a number in
    the time field's scale) per item, separated as the items are. A line that does not match its
    session is refused by its number, before any scoring."""
    lines = _split_lines(path)
    if len(lines) != len(sessions):
        raise RecommendError(f"{path}: {len(lines)} line(s) of times for {len(sessions)} session(s) in "
                             f"{sessions_path}; give one line a session, in the same order")
    times = []
    for number, (line, session) in enumerate(zip(lines, sessions), start=1):
        if len(line) != len(session):
            raise RecommendError(f"{path} line {number}: {len(line)} time(s) for the {len(session)} "
                                 f"item(s) of line {number} of {sessions_path}; give one time per item")
        try:
            values = [float(t) for t in line]
        except ValueError:
            raise RecommendError(f"{path} line {number}: {' '.join(line)!r} holds a value that is not "
                                 "a number; give times in the time field's scale") from None
        if not all(math.isfinite(v) for v in values):
            raise RecommendError(f"{path} line {number}: give finite numbers")
        times.append(values)
    return times


def write_results(results, path):
    """``.json`` (a list of {session, items: [{item, score, title}], skipped, fallback}) or a TSV
    (session index, rank, item, score, title)."""
    import json

    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps([{"session": r.session, "skipped": r.skipped, "fallback": r.fallback,
                                     "items": [vars(x) for x in r.items]} for r in results], indent=1))
        return path
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("session\trank\titem\tscore\ttitle\n")
        for n, result in enumerate(results):
            for rank, rec in enumerate(result.items, start=1):
                title = rec.title.replace("\t", " ")
                handle.write(f"{n}\t{rank}\t{rec.item}\t{rec.score:.6f}\t{title}\n")
    return path
