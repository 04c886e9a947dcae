// Column accumulators: sum the adder-tree outputs over temporal cycles and K tiles.
//
// Per column c: on the first cycle of a weight vector the running value starts
// from base_i[c] (the partial sum of earlier K tiles, or 0 on the first tile);
// every enabled cycle adds the sign-extended tree sum. sum_o is the value after
// this cycle's addition (combinational), acc_q keeps it for the next cycle.
// Width: |Y| <= 3 * 2^(ACT_W-1) * K; ACC_W = 32 holds K <= 5,592,405 for
// ACT_W = 8 (the engine limits K to 22 bits).
`default_nettype none

module fineq_accumulator #(
  parameter integer COLS  = 64,
  parameter integer SUM_W = 15,
  parameter integer ACC_W = 32
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  input  wire                  en_i,
  input  wire                  first_i,
  input  wire [COLS*ACC_W-1:0] base_i,
  input  wire [COLS*SUM_W-1:0] sum_i,
  output wire [COLS*ACC_W-1:0] sum_o
);

  initial begin
    if (ACC_W <= SUM_W) begin
      $error("fineq_accumulator: ACC_W (%0d) must exceed SUM_W (%0d)", ACC_W, SUM_W);
      $finish;
    end
  end

  genvar c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      reg  [ACC_W-1:0] acc_q;
      wire [ACC_W-1:0] start = first_i ? base_i[c*ACC_W +: ACC_W] : acc_q;
      wire [ACC_W-1:0] ext   = {{(ACC_W-SUM_W){sum_i[c*SUM_W+SUM_W-1]}}, sum_i[c*SUM_W +: SUM_W]};
      wire [ACC_W-1:0] acc_d = en_i ? start + ext : acc_q;

      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) acc_q <= {ACC_W{1'b0}};
        else         acc_q <= acc_d;
      end

      assign sum_o[c*ACC_W +: ACC_W] = start + ext;
    end
  endgenerate

endmodule

`resetall
