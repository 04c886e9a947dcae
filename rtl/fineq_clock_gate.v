// Integrated clock gate: gclk_o pulses with clk_i on the cycles whose en_i was
// high before the rising edge (a latch open while clk_i is low holds en_i
// through the high phase, so gclk_o never glitches).
//
// Synthesis with a liberty defines FINEQ_ICG_NANGATE45 (synth/yosys_unit.tcl):
// the gate is then Nangate45's integrated clock-gate cell CLKGATETST_X1
// (scan enable tied low). Otherwise, in simulation and in the library-free
// estimate, it is the same function written behaviourally (latch + AND).
`default_nettype none
`include "fineq_defs.vh"

module fineq_clock_gate (
  input  wire clk_i,
  input  wire en_i,
  output wire gclk_o
);

`ifdef FINEQ_ICG_NANGATE45
  CLKGATETST_X1 u_icg (
    .CK (clk_i),
    .E  (en_i),
    .SE (1'b0),
    .GCK(gclk_o)
  );
`else
  reg en_l;

  // the latch is the point of the cell
  /* verilator lint_off LATCH */
  always @* begin
    if (!clk_i) en_l = en_i;
  end
  /* verilator lint_on LATCH */

  assign gclk_o = clk_i & en_l;
`endif

endmodule

`resetall
