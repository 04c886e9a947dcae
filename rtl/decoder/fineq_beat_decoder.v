// Weight-beat decoder: BPV blocks of one row -> the ROWS-weight vector of one K tile.
//
// A beat carries BPV = ceil((ROWS+16)/24) consecutive blocks of row m starting at
// block floor(ROWS*t/24). All blocks are decoded (BPV fineq_decoder instances);
// the vector is the ROWS weights starting at weight 8*skip_i (skip_i in 0..2),
// and weights at positions >= valid_i (past K) are forced to 0.
// Output: weight r in vec_o[3r+2:3r], 3-bit sign-magnitude. Combinational.
`default_nettype none
`include "fineq_defs.vh"

module fineq_beat_decoder #(
  parameter integer ROWS = 64,
  parameter integer BPV  = `FINEQ_BPV(ROWS),
  parameter integer VW   = $clog2(ROWS + 1)
) (
  input  wire [BPV*`FINEQ_BLOCK_BITS-1:0] beat_i,
  input  wire [1:0]        skip_i,
  input  wire [VW-1:0]     valid_i,
  output reg  [ROWS*`FINEQ_W_BITS-1:0] vec_o
);

  initial begin
    if (ROWS < 8 || ROWS % 8 != 0) begin
      $error("%m: ROWS (%0d) must be a positive multiple of 8", ROWS);
      $finish;
    end
    if (BPV * `FINEQ_BLOCK_WEIGHTS < ROWS + 16) begin
      $error("%m: BPV (%0d) blocks cannot cover ROWS + 16 = %0d weights", BPV, ROWS + 16);
      $finish;
    end
  end

  // Weights past 8*skip + ROWS of the last block are never selected for the
  // largest skip; their decoder outputs are unused by design.
  /* verilator lint_off UNUSEDSIGNAL */
  wire [BPV*`FINEQ_DECODED_BITS-1:0] all_w;
  /* verilator lint_on UNUSEDSIGNAL */

  genvar b;
  generate
    for (b = 0; b < BPV; b = b + 1) begin : g_block
      fineq_decoder u_dec (
        .block_i  (beat_i[`FINEQ_BLOCK_BITS*b +: `FINEQ_BLOCK_BITS]),
        .weights_o(all_w[`FINEQ_DECODED_BITS*b +: `FINEQ_DECODED_BITS])
      );
    end
  endgenerate

  integer r;
  always @* begin
    vec_o = {ROWS*`FINEQ_W_BITS{1'b0}};
    case (skip_i)
      2'd1:    vec_o = all_w[8*`FINEQ_W_BITS +: ROWS*`FINEQ_W_BITS];   // skip 8 weights
      2'd2:    vec_o = all_w[16*`FINEQ_W_BITS +: ROWS*`FINEQ_W_BITS];  // skip 16 weights
      default: vec_o = all_w[0 +: ROWS*`FINEQ_W_BITS];
    endcase
    for (r = 0; r < ROWS; r = r + 1) begin
      if (r >= valid_i) vec_o[`FINEQ_W_BITS*r +: `FINEQ_W_BITS] = {`FINEQ_W_BITS{1'b0}};
    end
  end

endmodule

`resetall
