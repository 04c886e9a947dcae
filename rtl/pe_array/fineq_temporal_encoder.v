// Temporal encoder (spec section 8) for one weight vector of ROWS weights.
//
// Holds the vector (3-bit sign-magnitude per row) and a 2-bit cycle counter
// cnt. Row r's bitstream bit on cycle cnt is (cnt < |w_r|): a thermometer code,
// one comparator per weight. Early termination: the vector lasts
// max(1, max_r |w_r|) cycles; last_o is high on its final cycle. A vector whose
// magnitudes are all 0 lasts one cycle with every bit 0.
// load_i latches vec_i and restarts the count; step_i advances the count.
// CODING = 1 (binary-weighted, a variant beyond the paper): |w| = b0 + 2*b1 in
// at most two cycles. A vector with some |w_r| >= 2 lasts 2 cycles: on cycle 0
// the bits are b1 and shift_o is high (the accumulator adds the column sums
// doubled), on cycle 1 they are b0; any other vector lasts one cycle with the
// b0 bits. CODING = 0 (thermometer, the paper's): shift_o is always 0.
// CODING = 2 (power-of-two, a variant outside the spec, for the pow2 codebook whose field magnitudes 1, 2, 3
// stand for 1, 2, 4): every vector lasts one cycle; row r's magnitude is decoded one-hot into bits_o[r] (x),
// x2_o[r] (2x) and x4_o[r] (4x) for the power-of-two PEs (fineq_pe_array POW2 = 1). Other codings: x2_o and
// x4_o are 0.
// CLOCK_GATE = 1: the vector register is clocked through a clock gate enabled
// by load_i; CLOCK_GATE = 0: a plain register with a load multiplexer.
`default_nettype none
`include "fineq_defs.vh"

module fineq_temporal_encoder #(
  parameter integer ROWS       = 64,
  parameter integer CLOCK_GATE = 1,
  parameter integer CODING     = 0
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire              load_i,
  input  wire [ROWS*3-1:0] vec_i,
  input  wire              step_i,
  output reg  [ROWS-1:0]   bits_o,
  output reg  [ROWS-1:0]   x2_o,
  output reg  [ROWS-1:0]   x4_o,
  output reg  [ROWS-1:0]   signs_o,
  output wire              shift_o,
  output wire              first_o,
  output wire              last_o
);

  initial begin
    if (ROWS < 1) begin
      $error("%m: ROWS (%0d) must be positive", ROWS);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
    if (CODING < 0 || CODING > 2) begin
      $error("%m: CODING (%0d) must be 0 (thermometer), 1 (binary) or 2 (power-of-two)", CODING);
      $finish;
    end
  end

  wire [ROWS*3-1:0] vec_q;
  reg [1:0]        cnt_q, cnt_d;

  always @* begin
    cnt_d = cnt_q;
    if (load_i) begin
      cnt_d = 2'd0;
    end else if (step_i) begin
      cnt_d = cnt_q + 2'd1;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) cnt_q <= 2'd0;
    else         cnt_q <= cnt_d;
  end

  fineq_en_reg #(.WIDTH(ROWS*3), .CLOCK_GATE(CLOCK_GATE)) u_vec (
    .clk_i (clk_i),
    .rst_ni(rst_ni),
    .en_i  (load_i),
    .d_i   (vec_i),
    .q_o   (vec_q)
  );

  // Bitstreams and the vector's largest magnitude.
  reg any2, any3;
  wire hi = (CODING == 1) && any2 && (cnt_q == 2'd0);  // binary: the b1 cycle
  integer r;
  always @* begin
    bits_o  = {ROWS{1'b0}};
    x2_o    = {ROWS{1'b0}};
    x4_o    = {ROWS{1'b0}};
    signs_o = {ROWS{1'b0}};
    any2 = 1'b0;
    any3 = 1'b0;
    for (r = 0; r < ROWS; r = r + 1) begin
      if (CODING == 2) begin
        bits_o[r] = vec_q[3*r]   & ~vec_q[3*r+1];
        x2_o[r]   = ~vec_q[3*r]  &  vec_q[3*r+1];
        x4_o[r]   = vec_q[3*r]   &  vec_q[3*r+1];
      end else if (CODING == 1) begin
        bits_o[r] = hi ? vec_q[3*r+1] : vec_q[3*r];
      end else begin
        bits_o[r] = (cnt_q < vec_q[3*r +: 2]);
      end
      signs_o[r] = vec_q[3*r+2];
      any2 = any2 | vec_q[3*r+1];
      any3 = any3 | (vec_q[3*r] & vec_q[3*r+1]);
    end
  end

  // Thermometer: tmax = 3 if any3, 2 if any2, else 1; last when cnt+1 >= tmax.
  // Binary: 2 cycles if any2, else 1. Power-of-two: 1 cycle.
  assign last_o  = (CODING == 2) ? 1'b1
                 : (CODING == 1) ? (any2 ? (cnt_q == 2'd1) : 1'b1)
                                 : (any3 ? (cnt_q == 2'd2) : (any2 ? (cnt_q == 2'd1) : 1'b1));
  assign shift_o = hi;
  assign first_o = (cnt_q == 2'd0);

endmodule

`resetall
