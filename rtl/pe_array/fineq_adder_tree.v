// Signed adder tree with per-input sign application.
//
// Input i is an IN_W-bit two's-complement value x_i (a PE output) and a sign
// flag neg_i[i] (the weight's sign). The leaf term is -x_i when neg_i[i], else
// x_i, sign-extended to IN_W+1 bits (so -(-2^(IN_W-1)) fits). Each level of the
// binary tree widens by one bit: SUM_W = IN_W + 1 + LEVELS, LEVELS = clog2(N),
// which cannot overflow: |sum| <= N * 2^(IN_W-1) <= 2^(SUM_W-2).
// Combinational. Inputs beyond N (up to the next power of 2) are 0.
`default_nettype none

module fineq_adder_tree #(
  parameter integer N      = 64,
  parameter integer IN_W   = 8,
  parameter integer LEVELS = (N > 1) ? $clog2(N) : 1,
  parameter integer SUM_W  = IN_W + 1 + LEVELS
) (
  input  wire [N*IN_W-1:0] data_i,
  input  wire [N-1:0]      neg_i,
  output wire [SUM_W-1:0]  sum_o
);

  localparam integer NP = 1 << LEVELS;

  initial begin
    if (N < 1) begin
      $error("fineq_adder_tree: N (%0d) must be positive", N);
      $finish;
    end
    if (IN_W < 2) begin
      $error("fineq_adder_tree: IN_W (%0d) must be at least 2", IN_W);
      $finish;
    end
    if (SUM_W != IN_W + 1 + LEVELS) begin
      $error("fineq_adder_tree: SUM_W must be IN_W + 1 + LEVELS");
      $finish;
    end
  end

  genvar l, n;
  generate
    for (l = 0; l <= LEVELS; l = l + 1) begin : g_level
      localparam integer W   = IN_W + 1 + l;
      localparam integer CNT = NP >> l;
      wire [CNT*W-1:0] node;
      if (l == 0) begin : g_leaf
        for (n = 0; n < CNT; n = n + 1) begin : g_node
          if (n < N) begin : g_term
            wire signed [W-1:0] x = {data_i[n*IN_W+IN_W-1], data_i[n*IN_W +: IN_W]};
            assign node[n*W +: W] = neg_i[n] ? -x : x;
          end else begin : g_pad
            assign node[n*W +: W] = {W{1'b0}};
          end
        end
      end else begin : g_sum
        for (n = 0; n < CNT; n = n + 1) begin : g_node
          wire signed [W-2:0] a = g_level[l-1].node[(2*n)*(W-1) +: (W-1)];
          wire signed [W-2:0] b = g_level[l-1].node[(2*n+1)*(W-1) +: (W-1)];
          assign node[n*W +: W] = {a[W-2], a} + {b[W-2], b};
        end
      end
    end
  endgenerate

  assign sum_o = g_level[LEVELS].node;

endmodule

`resetall
