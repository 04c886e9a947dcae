// Column accumulators: sum the adder-tree outputs over temporal cycles and K tiles.
//
// Per column c: on the first cycle of a weight vector the running value starts
// from base_i[c] (the partial sum of earlier K tiles, or 0 on the first tile);
// every enabled cycle adds the sign-extended tree sum. sum_o is the value after
// this cycle's addition (combinational), acc_q keeps it for the next cycle.
// Width: |Y| <= 3 * 2^(ACT_W-1) * K; ACC_W = 32 holds K <= 5,592,405 for
// ACT_W = 8 (the engine limits K to 22 bits); with the power-of-two levels
// (up to 4) |Y| <= 512 K, which 32 bits hold for K < 2^22.
// SHIFT = 1 (for the binary-weighted coding): on a cycle with shift_i high the
// sum input is doubled before it is added (|2 * sum| still fits ACC_W).
// SHIFT = 0: shift_i is unused.
// CLOCK_GATE = 1: acc_q is clocked through a clock gate enabled by en_i (one
// gate per column); CLOCK_GATE = 0: a plain register with an enable multiplexer.
`default_nettype none
`include "fineq_defs.vh"

module fineq_accumulator #(
  parameter integer COLS  = 64,
  parameter integer SUM_W = 15,
  parameter integer ACC_W = 32,
  parameter integer CLOCK_GATE = 1,
  parameter integer SHIFT = 0
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  input  wire                  en_i,
  input  wire                  first_i,
  input  wire                  shift_i,
  input  wire [COLS*ACC_W-1:0] base_i,
  input  wire [COLS*SUM_W-1:0] sum_i,
  output wire [COLS*ACC_W-1:0] sum_o
);

  initial begin
    if (ACC_W <= SUM_W) begin
      $error("%m: ACC_W (%0d) must exceed SUM_W (%0d)", ACC_W, SUM_W);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
    if (SHIFT != 0 && SHIFT != 1) begin
      $error("%m: SHIFT (%0d) must be 0 or 1", SHIFT);
      $finish;
    end
  end

  wire unused_shift = shift_i;  // read only when SHIFT = 1

  genvar c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      wire [ACC_W-1:0] acc_q;
      wire [ACC_W-1:0] start = first_i ? base_i[c*ACC_W +: ACC_W] : acc_q;
      wire [ACC_W-1:0] ext1  = {{(ACC_W-SUM_W){sum_i[c*SUM_W+SUM_W-1]}}, sum_i[c*SUM_W +: SUM_W]};
      wire [ACC_W-1:0] ext;
      if (SHIFT != 0) begin : g_shift
        assign ext = shift_i ? {ext1[ACC_W-2:0], 1'b0} : ext1;
      end else begin : g_noshift
        assign ext = ext1;
      end
      wire [ACC_W-1:0] sum   = start + ext;

      fineq_en_reg #(.WIDTH(ACC_W), .CLOCK_GATE(CLOCK_GATE)) u_acc (
        .clk_i (clk_i),
        .rst_ni(rst_ni),
        .en_i  (en_i),
        .d_i   (sum),
        .q_o   (acc_q)
      );

      assign sum_o[c*ACC_W +: ACC_W] = sum;
    end
  endgenerate

endmodule

`resetall
