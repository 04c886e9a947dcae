"""Performance (layer 6): the cycle-level performance and energy model, FineQ engine vs MAC systolic array
(``fineq perf``): the layers and their cycles (:mod:`.layers`), power from synthesis (:mod:`.power`), energy
(:mod:`.energy`), memory traffic (:mod:`.memory`), table and chart (:mod:`.report`), the activity workload of
``make synth`` (:mod:`.workload`).

Cycles
  FineQ: ``fineq.engine.cycles.run_cycles`` per engine run (exact: the RTL's cycle
  counter equals it, see tb/fineq_gemm_engine and tests/test_perf.py), times
  ``ceil(N / COLS)`` runs (N is tiled by the driver).
  MAC: the schedule of the input-stationary MAC array as its testbench drives
  it: per K tile, ``rows_t`` preload cycles, ``M`` weight vectors one per cycle,
  and ``ROWS + COLS - 1`` cycles to drain the skew; times ``ceil(N / COLS)``.
  (The testbench checks every output at exactly the cycle this schedule gives.)

Energy
  ``E = P * cycles / f``, with ``P`` the total power that ``make synth`` reports
  (build/synth/summary.json, real-workload activity, 400 MHz): FineQ = PE array
  with encoders and accumulators + the weight decoders; MAC = MAC systolic array
  with the same column accumulators. Compute-only, and with memory
  (:mod:`fineq.perf.memory`: DRAM and on-chip SRAM per byte from Horowitz, ISSCC
  2014; the same traffic for both arrays), which makes the ratio depend on N.

Workloads
  Real weights by default: SmolLM2-135M (``--weights smollm2``; reference = the
  dequantized Q4_1 GGUF) or the model / file given, quantized with ``--mode``
  (or a ``.fineq.safetensors``' stored levels). Modelled: that model's own
  linears, and the linear layers (q, k, v, o, gate, up, down) of LLaMA-2-7B (32
  layers, 4096 / 11008) and 13B (40 layers, 5120 / 13824) with the real
  weights' statistics scaled to their shapes (:func:`scaled_layers`: each
  layer type's mean temporal cycles per 64-weight vector, times the LLaMA
  matrix's vector count). ``--synthetic``: LLaMA-2 shapes with synthetic weights
  (fineq.synthetic.heavy_tailed, labelled SYNTHETIC).
"""

