"""SASRecPub: SASRec as published and benchmarked, an ID-only baseline on TPAD's own layers.

RecBole's SASRec uses BERT-style post-LN layers with absolute positions; the strongest published
SASRec on our split (RecTools' implementation, the eSASRec benchmark) uses the SASRec author's
pre-LN block, a final LayerNorm, positions counted back from the last item, dropout on the item
table and xavier-normal weights. This is that network: TPAD with no features and the
``sasrec`` encoder, so TPAD on the same settings differs from it by the item features alone.
Train it as the benchmark did with ``loss_type: SS`` and ``sequence_loss: all``
(``properties/model/SASRecPub.yaml``).
"""

from recbole_tpad.model.tpad import TPAD


class SASRecPub(TPAD):
    def __init__(self, config, dataset):
        config["use_features"] = False
        config["use_id_embedding"] = True
        super().__init__(config, dataset)
