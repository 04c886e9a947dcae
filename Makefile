# FineQ: golden model, RTL simulation, synthesis and performance model.
# Every target first runs scripts/setup.sh (idempotent, seconds when done).
#
#   make demo     install everything, then run the end-to-end demo (RTL on Verilator)
#   make test     the whole test suite (golden model, RTL on Icarus and Verilator, small synthesis; make sim adds
#                 the full-size configurations marked fullsize)
#   make sim      RTL regression on both simulators with a summary table  (SIM=icarus|verilator SEED=n WAVES=1)
#   make synth    Yosys + OpenSTA on Nangate45 -> build/synth/summary.{json,md,png}  (LIBERTY=path WEIGHTS=model)
#   make perf     cycle/energy model on real weights (SmolLM2, LLaMA-2 shapes) -> build/perf/  (WEIGHTS=model)
#   make eval     perplexity of SmolLM2 under every quantization method -> build/eval/
#   make pareto   FineQ vs the MAC array at equal accuracy -> build/pareto/  (needs make eval-pareto, make synth)
#   make bench    quantizer throughput/memory benchmark
#   make bench-big  peak memory and time of quantize-model on a synthetic ~1B model, one block at a time
#   make measure  Verilator speed of the 64x64 engine and PE utilization
#   make lint     ruff + verilator --lint-only -Wall on every RTL file

RUN      := scripts/venv-env.sh
PYTEST   := $(RUN) python -m pytest
JOBS     ?= 2
SIM      ?=
SEED     ?=
WAVES    ?=
export SIM SEED WAVES

.PHONY: setup demo test test-golden sim synth perf bench bench-big lint clean measure eval eval-pareto eval-heldout pareto

setup:
	@scripts/setup.sh

demo: setup
	$(RUN) fineq demo

test: setup
	$(PYTEST) -q -n $(JOBS) -m "not fullsize" tests tb

test-golden: setup
	$(PYTEST) -q tests

sim: setup
	$(RUN) python sim/regress.py

synth: setup
	$(RUN) bash synth/run.sh

perf: setup
	@mkdir -p build/perf
	$(RUN) fineq perf $(if $(WEIGHTS),--weights $(WEIGHTS)) --json build/perf/perf.json

EVAL_METHODS ?= reference,fineq-paper,fineq-search,fineq-hdiag,fineq-gptq,fineq-gptq-clip,fineq-gptq-ord,fineq-gptq-hw,fineq-recon,fineq-gptq-ord-g128,fineq-recon-g128,fineq-gptq-ord-pow2,fineq-recon-pow2,rtn,rtn3,rtn4,rtn8,uniform,gptq,gptq-g128,gptq3,gptq3-g128,gptq4,gptq4-g128,gptq8,gptq3-sm,gptq3-sm-g128,rtn4-sm,gptq4-sm,gptq4-sm-g128,rtn8-sm,gptq8-sm,owq,pbllm
eval: setup
	@mkdir -p build/eval
	$(RUN) fineq eval --model smollm2 --methods $(EVAL_METHODS) --seq 256 2048 --force \
	  --json build/eval/smollm2.json --chart build/eval/smollm2.png | tee build/eval/smollm2.txt

# make pareto: FineQ against the MAC array at equal accuracy, from an eval of the methods both arrays run and
# make synth's summary (docs/performance.md "At equal accuracy"); make eval-pareto writes the eval it reads.
PARETO_METHODS ?= reference,fineq-paper,fineq-search,fineq-gptq,fineq-gptq-ord,fineq-recon,fineq-recon-g128,fineq-gptq-ord-pow2,fineq-recon-pow2,fineq-recon-hw@0.1,fineq-recon-hw@0.2,fineq-gptq-hw@0.01,fineq-gptq-hw@0.02,fineq-gptq-hw@0.05,fineq-gptq-hw@0.1,gptq3-sm,gptq3-sm-g128,gptq4-sm,gptq4-sm-g128,rtn8-sm,gptq8-sm,gptq4-sm+rot,gptq3-sm-g128+rot
PARETO_EVAL ?= build/eval/pareto.json
eval-pareto: setup
	@mkdir -p build/eval
	$(RUN) fineq eval --model smollm2 --methods $(PARETO_METHODS) --seq 256 2048 --force --json $(PARETO_EVAL) \
	  | tee build/eval/pareto.txt

# make eval-heldout: calibrated on the default corpus, evaluated on another text (Python's pydoc topics)
HELDOUT_METHODS ?= reference,fineq-gptq-ord,fineq-recon
eval-heldout: setup
	@mkdir -p build/eval
	$(RUN) python sim/texts.py build/texts
	$(RUN) fineq eval --model smollm2 --text build/texts/pydoc.txt --calib-text build/texts/devil.txt \
	  --methods $(HELDOUT_METHODS) --seq 256 2048 --force --json build/eval/heldout.json | tee build/eval/heldout.txt

pareto: setup
	$(RUN) fineq pareto $(foreach e,$(PARETO_EVAL),--eval $(e)) --synth build/synth/summary.json --out build/pareto

bench: setup
	$(RUN) fineq bench

# make bench-big: peak memory and time of quantize-model on a synthetic ~1B LLaMA-shaped model, one block at a
# time (BASELINE=1 adds the whole-model run); the model is built once into build/bench-big/model (2.3 GB)
bench-big: setup
	$(RUN) python sim/bench_bigmodel.py $(if $(BASELINE),--baseline)

lint: setup
	$(RUN) ruff check golden tests tb sim synth
	$(RUN) bash scripts/lint-rtl.sh

clean:
	rm -rf build sim_build .pytest_cache

measure: setup
	PYTHONPATH=tb $(RUN) python sim/engine_bench.py
