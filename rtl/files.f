# The RTL's one file list: every consumer reads it (fineq.hw.sources.rtl_sources, which the native
# harness, Icarus, the cocotb testbenches and synth/ use; synth/yosys_unit.tcl; scripts/lint-rtl.sh).
# Paths relative to this folder; the include folder for fineq_defs.vh is this folder.
# In sorted order (the order Yosys reads them in changes its netlists' names, and so ABC's choices).
decoder/fineq_beat_decoder.v
decoder/fineq_decoder.v
fineq_clock_gate.v
fineq_en_reg.v
fineq_gemm_engine.v
fineq_psum_buf.v
mac_pe.v
mac_systolic_array.v
pe_array/fineq_accumulator.v
pe_array/fineq_adder_tree.v
pe_array/fineq_pe_array.v
pe_array/fineq_temporal_encoder.v
