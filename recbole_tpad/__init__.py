"""recbole-tpad: TPAD (multimodal LLM-enhanced session-based recommendation) as a RecBole plugin.

Importing the package applies the RecBole compatibility shims (``compat``) before anything else
of RecBole is used, and registers TPAD so that RecBole's ``get_model``, ``load_data_and_model``
and checkpoints find it.
"""

from recbole_tpad import compat

compat.apply()

from recbole_tpad.model import content as _content_module  # noqa: E402
from recbole_tpad.model import sasrec_pub as _sasrec_pub_module  # noqa: E402
from recbole_tpad.model import tpad as _tpad_module  # noqa: E402

compat.register_model("TPAD", _tpad_module)
compat.register_model("ContentKNN", _content_module)
compat.register_model("SASRecPub", _sasrec_pub_module)

__version__ = "0.1.0"
