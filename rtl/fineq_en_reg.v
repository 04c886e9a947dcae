// Register with a load enable, reset to 0: q_o takes d_i at a rising edge of
// clk_i on which en_i is high and holds otherwise.
// CLOCK_GATE = 1: the register is clocked through a clock gate enabled by en_i
// (fineq_clock_gate: it is not clocked at all while it holds); CLOCK_GATE = 0:
// a plain register behind an enable multiplexer. Used by both arrays for every
// register that holds its value most of the time.
`default_nettype none
`include "fineq_defs.vh"

module fineq_en_reg #(
  parameter integer WIDTH      = 8,
  parameter integer CLOCK_GATE = 1
) (
  input  wire             clk_i,
  input  wire             rst_ni,
  input  wire             en_i,
  input  wire [WIDTH-1:0] d_i,
  output wire [WIDTH-1:0] q_o
);

  initial begin
    if (WIDTH < 1) begin
      $error("%m: WIDTH (%0d) must be positive", WIDTH);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
  end

  reg [WIDTH-1:0] q_q;

  generate
    if (CLOCK_GATE != 0) begin : g_gated
      wire gclk;
      fineq_clock_gate u_cg (.clk_i(clk_i), .en_i(en_i), .gclk_o(gclk));
      always @(posedge gclk or negedge rst_ni) begin
        if (!rst_ni) q_q <= {WIDTH{1'b0}};
        else         q_q <= d_i;
      end
    end else begin : g_plain
      wire [WIDTH-1:0] q_d = en_i ? d_i : q_q;
      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) q_q <= {WIDTH{1'b0}};
        else         q_q <= q_d;
      end
    end
  endgenerate

  assign q_o = q_q;

endmodule

`resetall
