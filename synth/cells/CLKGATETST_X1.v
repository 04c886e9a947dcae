// Simulation model of Nangate45's integrated clock gate CLKGATETST_X1 for the
// gate-level proofs (its liberty function is a statetable, which Yosys does not
// turn into logic): the latch is open while CK is low, GCK = CK & latched (E | SE).
module CLKGATETST_X1 (CK, E, SE, GCK);
  input CK, E, SE;
  output GCK;
  reg iq;
  always @* if (!CK) iq = E | SE;
  assign GCK = CK & iq;
endmodule
