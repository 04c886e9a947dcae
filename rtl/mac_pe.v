// Baseline MAC PE for the input-stationary systolic array (mac_systolic_array).
//
// Holds one int8 activation (act_q, loaded with load_i). Each cycle it
// multiplies the weight arriving from the left (w_i: W_W-bit sign-magnitude,
// {sign, |w|}: with W_W = 3 the FineQ decoder's output format, levels -3..3;
// W_W = 4: -7..7; W_W = 8: -127..127) by act_q, adds the partial sum arriving
// from above (psum_i) and registers the result (psum_o), and registers the
// weight for the PE to its right (w_o).
// Product: |act * w| <= 2^(ACT_W-1) * (2^(W_W-1) - 1), PROD_W = ACT_W + W_W - 1
// bits signed (FINEQ_MAC_PROD_W); PSUM_W holds a column.
// CLOCK_GATE = 1: act_q is clocked through a clock gate enabled by load_i (as
// in the FineQ PE array); the weight and partial-sum registers move every cycle.
`default_nettype none
`include "fineq_defs.vh"

module mac_pe #(
  parameter integer ACT_W  = 8,
  parameter integer W_W    = 3,
  parameter integer PSUM_W = 16,
  parameter integer CLOCK_GATE = 1
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire              load_i,
  input  wire [ACT_W-1:0]  act_i,
  input  wire [W_W-1:0]    w_i,
  input  wire [PSUM_W-1:0] psum_i,
  output wire [W_W-1:0]    w_o,
  output wire [PSUM_W-1:0] psum_o
);

  localparam integer PROD_W = `FINEQ_MAC_PROD_W(ACT_W, W_W);

  initial begin
    if (W_W < 2) begin
      $error("%m: W_W (%0d) must be at least 2 (a sign and a magnitude bit)", W_W);
      $finish;
    end
    if (PSUM_W <= PROD_W) begin
      $error("%m: PSUM_W (%0d) must exceed ACT_W + W_W - 1 = %0d", PSUM_W, PROD_W);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
  end

  wire [ACT_W-1:0]  act_q;
  reg  [W_W-1:0]    w_q;
  reg  [PSUM_W-1:0] psum_q;

  wire signed [PROD_W-1:0] act_s = {{(W_W-1){act_q[ACT_W-1]}}, act_q};
  wire signed [PROD_W-1:0] mag   = {{(ACT_W){1'b0}}, w_i[W_W-2:0]};
  wire signed [PROD_W-1:0] prod  = act_s * mag;
  wire signed [PROD_W-1:0] term  = w_i[W_W-1] ? -prod : prod;
  wire [PSUM_W-1:0] psum_d = psum_i + {{(PSUM_W-PROD_W){term[PROD_W-1]}}, term};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      w_q    <= {W_W{1'b0}};
      psum_q <= {PSUM_W{1'b0}};
    end else begin
      w_q    <= w_i;
      psum_q <= psum_d;
    end
  end

  // the activation register: clock-gated by load_i, as in the FineQ PE array
  fineq_en_reg #(.WIDTH(ACT_W), .CLOCK_GATE(CLOCK_GATE)) u_act (
    .clk_i (clk_i),
    .rst_ni(rst_ni),
    .en_i  (load_i),
    .d_i   (act_i),
    .q_o   (act_q)
  );

  assign w_o    = w_q;
  assign psum_o = psum_q;

endmodule

`resetall
