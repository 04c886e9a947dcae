"""Hardware execution (layer 4): running the RTL. One job format and one result type (:mod:`.job`) for every
backend (:mod:`.native` Verilator harness, :mod:`.icarus`), the RTL sources from the one file list
(:mod:`.sources`), and :func:`fineq.hw.run.run_gemm`, which tiles N and checks against the golden model."""
