# Two commands do everything on a fresh machine (Python 3.11, pip, gcc):
#   make demo   set up .venv, build the demo data, train BasicVSR with multigrid on CPU, print PSNR
#   make test   set up .venv, run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.basicsr-multigrid-installed
DEMO_DATA ?= datasets/demo
DEMO_OPT ?= options/train/demo/train_BasicVSR_multigrid_demo.yml

.PHONY: install demo test clean-demo

install: $(STAMP)

# basicsr 1.4.2 is an sdist whose build imports torch: install the pinned torch first, then build
# basicsr without build isolation (notes B13).
$(STAMP): setup.py requirements.txt VERSION Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q cython numpy
	$(PY) -m pip install -q --no-build-isolation -r requirements.txt pytest hypothesis pytest-xdist
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

$(DEMO_DATA)/meta_info_train.txt: | $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA) --overwrite

demo: $(STAMP) $(DEMO_DATA)/meta_info_train.txt
	$(PY) tools/run_demo.py -opt $(DEMO_OPT) --data $(DEMO_DATA)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

clean-demo:
	rm -rf $(DEMO_DATA) experiments/*demo* tb_logger/*demo*
