# Two entry points: `make demo` (lean runtime, shipped model) and `make test` (dev environment, full suite).
PYTHON ?= python3
DEV_VENV := .venv
DEMO_VENV := .venv-demo
DEMO_DIR := .demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow soak default-model default-model-train default-model-ship model-figures latency-figures picture arm64-check clean

demo: $(DEMO_DIR)/astronaut.jpg
	$(DEMO_VENV)/bin/edgefer detect --source $(DEMO_DIR)/astronaut.jpg --annotate $(DEMO_DIR)/astronaut-annotated.jpg

# NASA's public-domain astronaut photo (Eileen Collins), taken from scikit-image's wheel.
$(DEMO_DIR)/astronaut.jpg: $(DEMO_VENV)/.installed
	@test -n "$$(ls $(DEMO_DIR)/wheels/scikit_image-*.whl 2>/dev/null)" || \
		$(DEMO_VENV)/bin/pip download -q --no-deps --only-binary=:all: scikit-image -d $(DEMO_DIR)/wheels
	$(DEMO_VENV)/bin/python -m edgefer.samples $@ --wheel-dir $(DEMO_DIR)/wheels

# The README's picture and the event it shows, from the demo photo and the shipped model.
picture: $(DEMO_DIR)/astronaut.jpg
	mkdir -p docs/images
	$(DEMO_VENV)/bin/edgefer detect --source $(DEMO_DIR)/astronaut.jpg --annotate docs/images/astronaut.jpg \
		--quiet > docs/images/astronaut.json

# The demo venv holds a copy of the package (not an editable install, as a user gets it), so it is
# rebuilt whenever the package or the shipped model changes: a stale copy drew the README's picture
# with the model shipped before.
PACKAGE_FILES := $(wildcard edgefer/*.py train/*.py convert/*.py runtime/*.py runtime/*/*.py runtime/models/*)
$(DEMO_VENV)/.installed: pyproject.toml $(PACKAGE_FILES)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --upgrade pip
	$(DEMO_VENV)/bin/pip install -q ".[litert]"
	touch $@

test: $(DEV_VENV)/.installed
	@$(DEV_VENV)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; exit $$rc

test-slow: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m pytest -m slow $(PYTEST_ARGS)

# Long soak of `edgefer serve` (the CI suite runs a 30 s one): a looping clip for SOAK_FRAMES frames,
# RSS, file descriptors and latency every 30 s into SOAK_OUT; fails on late RSS/fd growth.
SOAK_SOURCE ?= ../shared/media/woman2.mp4
SOAK_FRAMES ?= 100000
SOAK_MODEL ?=
SOAK_OUT ?= soak-report.json

soak: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/python -m edgefer.runtime.serve.soak --source $(SOAK_SOURCE) --frames $(SOAK_FRAMES) \
		--interval 30 --out $(SOAK_OUT) $(if $(SOAK_MODEL),--model $(SOAK_MODEL))

# The shipped default model, end to end: train -> convert (INT8 TFLite, fp32 ONNX, INT8 QDQ ONNX, each
# through the parity gate, each with its fitted temperature) -> the README's model figures.
# Training is the long step: on a GPU machine `KERAS_BACKEND=jax make default-model-train` (minutes,
# see train/README.md "Training on a GPU"); on 2 CPU cores about 3 hours, and `--resume` carries it
# across interruptions. `make default-model-ship` then needs TensorFlow.
FER ?= ../shared/datasets/fer2013
KDEF ?= ../shared/datasets/kdef/KDEF
CKPLUS ?= ../shared/datasets/ckplus48
# The shipped recipe (docs/training.md, "The shipped default model"): MobileNet v1 at alpha 0.5 and 96 px,
# 80 epochs from scratch, half of KDEF's and CK+48's people beside FER2013 (about 3 hours on 2 cores).
MODEL_SIZE ?= 96
MODEL_EPOCHS ?= 80
MODEL_BATCH ?= 64
MODEL_ARGS ?= --alpha 0.5 --add-faces kdef=$(KDEF) --add-faces ckplus48=$(CKPLUS)
RUN ?= runs/fer2013_mnv1_$(MODEL_SIZE)
RESULTS ?= results/fer2013_mobilenet_v1_$(MODEL_SIZE)
# The `fer` package, the peer of the cross-dataset table, lives in its own virtual environment.
FER_VENV ?= .venv-fer

default-model: default-model-train default-model-ship

default-model-train: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/edgefer train --data $(FER) --out $(RUN) --input-size $(MODEL_SIZE) --epochs $(MODEL_EPOCHS) \
		--batch-size $(MODEL_BATCH) --resume $(MODEL_ARGS)

default-model-ship: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/edgefer convert --model $(RUN)/model.keras --out runtime/models --name default \
		--to tflite,onnx,onnx:int8 --adaround tflite,onnx --calib-data $(FER) --val-data $(FER)
	mkdir -p $(RESULTS)
	cp $(RUN)/meta.json $(RUN)/report.txt $(RUN)/history.csv $(RUN)/confusion_*.png $(RUN)/confusion_*.json \
		$(wildcard $(RUN)/data_report.json) $(RESULTS)/
	cp runtime/models/default.conversion.json $(RESULTS)/default.conversion.json
	$(MAKE) model-figures

# Every committed figure that depends on the shipped model and not on a quiet machine (the latency
# JSONs do: docs/benchmarks.md lists their commands).
model-figures: $(DEV_VENV)/.installed $(FER_VENV)/.installed
	$(DEV_VENV)/bin/python benchmarks/accuracy.py --data $(FER)/val --json benchmarks/results/accuracy-fer2013-val.json
	$(DEV_VENV)/bin/edgefer eval-cross $(foreach m,$(wildcard runtime/models/default_*.tflite runtime/models/default_*.onnx),--model $(m)) \
		--fer2013 $(FER) --kdef $(KDEF) --ckplus $(CKPLUS) --flip --zoom 0.9 --peer-python $(FER_VENV)/bin/python \
		--json benchmarks/results/cross-dataset.json
	$(DEV_VENV)/bin/python -m edgefer.train.results_table --write results/RESULTS.md
	$(DEV_VENV)/bin/python benchmarks/accuracy_tables.py --markdown README.md docs/training.md
	$(MAKE) picture

# The committed latency figures of this project's 2-core x86 machine (benchmarks/results/x86-2core-*.json)
# and every table written from them. Run on an idle machine after shipping a model: they time it.
YUNET ?= ../shared/weights/yunet/face_detection_yunet_2023mar.onnx
BENCH := $(DEV_VENV)/bin/python benchmarks/latency.py
VS_FER := --peer fer --peer-python $(FER_VENV)/bin/python --referee-yunet $(YUNET)
X86 := benchmarks/results/x86-2core

latency-figures: $(DEV_VENV)/.installed $(FER_VENV)/.installed
	$(BENCH) --threads 2 $(VS_FER) --json $(X86)-haar-vs-fer.json
	$(BENCH) --backend litert --threads 2 --source ../shared/media/woman2.mp4 $(VS_FER) --json $(X86)-haar-vs-fer-woman2.json
	$(BENCH) --backend litert --threads 2 --detector yunet --yunet-model $(YUNET) $(VS_FER) --json $(X86)-litert-yunet-vs-fer.json
	$(BENCH) --backend litert --threads 2 --stills $(VS_FER) --json $(X86)-haar-stills-vs-fer.json
	$(BENCH) --backend litert --threads 1 --iterations 500 --json $(X86)-litert-1thread.json
	$(DEV_VENV)/bin/python benchmarks/ops.py --batch 1 --json $(X86)-litert-ops-batch1.json
	$(DEV_VENV)/bin/python benchmarks/ops.py --json $(X86)-litert-ops-batch16.json
	$(BENCH) --compare $(X86)-haar-vs-fer.json $(X86)-haar-vs-fer-woman2.json $(X86)-litert-yunet-vs-fer.json \
		$(X86)-litert-1thread.json --plot $(X86)-latency.png --markdown devices/expected-performance.md
	$(DEV_VENV)/bin/python benchmarks/versus.py --markdown README.md docs/benchmarks.md devices/expected-performance.md
	$(DEV_VENV)/bin/python benchmarks/expected.py $(X86)-haar-vs-fer.json --json benchmarks/results/expected.json \
		--markdown devices/README.md devices/expected-performance.md

# fer's own requirements pull full TensorFlow, PyTorch and moviepy; its classifier needs only these.
$(FER_VENV)/.installed:
	$(PYTHON) -m venv $(FER_VENV)
	$(FER_VENV)/bin/pip install -q --no-deps fer==25.10.3
	$(FER_VENV)/bin/pip install -q tensorflow-cpu "opencv-python-headless<5" "setuptools<81" requests pillow
	touch $@

# The device kits on an emulated arm64 Debian, as root (devices/arm64/README.md): install.sh, verify.sh and
# detect, every event compared with the same in an amd64 Debian; report in devices/results/arm64-<suite>.json.
ARM64_ARGS ?=

arm64-check:
	devices/arm64/check.sh $(ARM64_ARGS)

$(DEV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install -q --upgrade pip
	$(DEV_VENV)/bin/pip install -q -e ".[dev]"
	touch $@

clean:
	rm -rf $(DEMO_VENV) $(DEMO_DIR) $(FER_VENV) build dist *.egg-info
