"""recbole-tpad: TPAD (multimodal LLM-enhanced session-based recommendation) as a RecBole plugin.

Importing the package applies the RecBole compatibility shims (``compat``) before anything else
of RecBole is used, and registers the plugin's models, their dataset, trainers and yaml defaults
with RecBole, so that RecBole's own ``run_recbole(model="TPAD", ...)``, ``get_model`` and
``create_dataset`` find them as they find a built-in model.
"""

from recbole_tpad import compat

compat.apply()

from recbole_tpad.model import content as _content_module  # noqa: E402
from recbole_tpad.model import sasrec_pub as _sasrec_pub_module  # noqa: E402
from recbole_tpad.model import tpad as _tpad_module  # noqa: E402

compat.register_model("TPAD", _tpad_module)
compat.register_model("ContentKNN", _content_module)
compat.register_model("SASRecPub", _sasrec_pub_module)

from recbole_tpad import trainer as _trainer  # noqa: E402
from recbole_tpad.config import plugin_model_files  # noqa: E402
from recbole_tpad.data.dataset import TPADDataset  # noqa: E402

for _name in ("TPAD", "ContentKNN"):
    compat.register_dataset(f"{_name}Dataset", TPADDataset)
for _name in ("TPAD", "SASRecPub", "ContentKNN"):
    compat.register_trainer(f"{_name}Trainer", getattr(_trainer, f"{_name}Trainer"))
compat.read_plugin_model_properties(plugin_model_files)

__version__ = "0.1.0"
