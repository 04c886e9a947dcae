// Baseline MAC PE for the input-stationary systolic array (mac_systolic_array).
//
// Holds one int8 activation (act_q, loaded with load_i). Each cycle it
// multiplies the weight arriving from the left (w_i: 3-bit sign-magnitude,
// the FineQ decoder's output format) by act_q, adds the partial sum arriving
// from above (psum_i) and registers the result (psum_o), and registers the
// weight for the PE to its right (w_o).
// Product: |act * w| <= 128 * 3 = 384, 10 bits signed; PSUM_W holds a column.
// CLOCK_GATE = 1: act_q is clocked through a clock gate enabled by load_i (as
// in fineq_pe); the weight and partial-sum registers move every cycle.
`default_nettype none
`include "fineq_defs.vh"

module mac_pe #(
  parameter integer ACT_W  = 8,
  parameter integer PSUM_W = 16,
  parameter integer CLOCK_GATE = 1
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire              load_i,
  input  wire [ACT_W-1:0]  act_i,
  input  wire [2:0]        w_i,
  input  wire [PSUM_W-1:0] psum_i,
  output wire [2:0]        w_o,
  output wire [PSUM_W-1:0] psum_o
);

  initial begin
    if (PSUM_W < ACT_W + 3) begin
      $error("%m: PSUM_W (%0d) must be at least ACT_W + 3 = %0d", PSUM_W, ACT_W + 3);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
  end

  wire [ACT_W-1:0]  act_q;
  reg  [2:0]        w_q;
  reg  [PSUM_W-1:0] psum_q;

  wire signed [ACT_W+2:0] act_s = {{3{act_q[ACT_W-1]}}, act_q};
  wire signed [ACT_W+2:0] mag   = {{(ACT_W+1){1'b0}}, w_i[1:0]};
  wire signed [ACT_W+2:0] prod  = act_s * mag;
  wire signed [ACT_W+2:0] term  = w_i[2] ? -prod : prod;
  wire [PSUM_W-1:0] psum_d = psum_i + {{(PSUM_W-ACT_W-3){term[ACT_W+2]}}, term};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      w_q    <= 3'd0;
      psum_q <= {PSUM_W{1'b0}};
    end else begin
      w_q    <= w_i;
      psum_q <= psum_d;
    end
  end

  // the activation register: clock-gated by load_i, as in fineq_pe
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
