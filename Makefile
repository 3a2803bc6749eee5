# Two entry points: `make demo` (lean runtime, shipped model) and `make test` (dev environment, full suite).
PYTHON ?= python3
DEV_VENV := .venv
DEMO_VENV := .venv-demo
DEMO_DIR := .demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow soak default-model picture clean

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

$(DEMO_VENV)/.installed: pyproject.toml
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

# The shipped default model, end to end (about 2 CPU-hours on 2 cores): 32 epochs from scratch, then an
# 18-epoch second cosine cycle from the best checkpoint, the linear SVM fitted and folded, INT8 TFLite + ONNX
# converted and checked on FER2013 PublicTest, and the run's reports copied into results/.
FER ?= ../shared/datasets/fer2013
RUN := runs/fer2013_mnv1_48
RESULTS := results/fer2013_mobilenet_v1_48

default-model: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/edgefer train --data $(FER) --out $(RUN) --epochs 32 --input-size 48 --resume
	$(DEV_VENV)/bin/edgefer train --data $(FER) --out $(RUN)_ft --init-from $(RUN)/cnn.keras --epochs 18 --lr 1e-3 --resume
	$(DEV_VENV)/bin/edgefer convert --model $(RUN)_ft/model.keras --out runtime/models --name default \
		--adaround tflite --calib-data $(FER) --val-data $(FER)
	mkdir -p $(RESULTS)
	cp $(RUN)_ft/meta.json $(RUN)_ft/report.txt $(RUN)_ft/history.csv $(RUN)_ft/confusion_*.png $(RUN)_ft/confusion_*.json $(RESULTS)/
	cp $(RUN)/history.csv $(RESULTS)/history_phase1.csv
	cp runtime/models/default.conversion.json $(RESULTS)/default.conversion.json

$(DEV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install -q --upgrade pip
	$(DEV_VENV)/bin/pip install -q -e ".[dev]"
	touch $@

clean:
	rm -rf $(DEMO_VENV) $(DEMO_DIR) build dist *.egg-info
