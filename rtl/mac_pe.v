// Baseline MAC PE for the input-stationary systolic array (mac_systolic_array).
//
// Holds one int8 activation (act_q, loaded with load_i). Each cycle it
// multiplies the weight arriving from the left (w_i: 3-bit sign-magnitude,
// the FineQ decoder's output format) by act_q, adds the partial sum arriving
// from above (psum_i) and registers the result (psum_o), and registers the
// weight for the PE to its right (w_o).
// Product: |act * w| <= 128 * 3 = 384, 10 bits signed; PSUM_W holds a column.
`default_nettype none

module mac_pe #(
  parameter integer ACT_W  = 8,
  parameter integer PSUM_W = 16
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
      $error("mac_pe: PSUM_W (%0d) must be at least ACT_W + 3", PSUM_W);
      $finish;
    end
  end

  reg  [ACT_W-1:0]  act_q;
  reg  [2:0]        w_q;
  reg  [PSUM_W-1:0] psum_q;

  wire [ACT_W-1:0]  act_d = load_i ? act_i : act_q;
  wire signed [ACT_W+2:0] act_s = {{3{act_q[ACT_W-1]}}, act_q};
  wire signed [ACT_W+2:0] mag   = {{(ACT_W+1){1'b0}}, w_i[1:0]};
  wire signed [ACT_W+2:0] prod  = act_s * mag;
  wire signed [ACT_W+2:0] term  = w_i[2] ? -prod : prod;
  wire [PSUM_W-1:0] psum_d = psum_i + {{(PSUM_W-ACT_W-3){term[ACT_W+2]}}, term};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      act_q  <= {ACT_W{1'b0}};
      w_q    <= 3'd0;
      psum_q <= {PSUM_W{1'b0}};
    end else begin
      act_q  <= act_d;
      w_q    <= w_i;
      psum_q <= psum_d;
    end
  end

  assign w_o    = w_q;
  assign psum_o = psum_q;

endmodule

`resetall
