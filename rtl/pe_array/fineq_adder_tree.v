// Signed adder trees, one per column, over N sign-applied terms (the temporal array's column sums).
//
// Term (n, c) is the IN_W-bit two's-complement value x(n, c) in data_i[(n*COLS + c)*IN_W +: IN_W] (PE (n, c)'s
// activation). On a cycle, term n counts if bits_i[n] (its weight's temporal bit, shared by every column)
// and is negated if neg_i[n] (its weight's sign):
//   sum_o[c] = sum_n (bits_i[n] ? (neg_i[n] ? -x(n, c) : x(n, c)) : 0).
// POW2 = 1 (the power-of-two PE, a variant outside the spec): the PE passes x if bits_i[n], 2x if x2_i[n], 4x
// if x4_i[n] (at most one of them high; the encoder decodes them once per row), so a term is
// +-(x << shift) and the leaves are 2 bits wider. POW2 = 0: x2_i and x4_i are unused (the paper's PE).
// A level-l node holds a value of LW + 1 + l bits (LW = IN_W + 2 POW2; the leaves LW + 1, so -(-2^(LW-1))
// fits; the root SUM_W = LW + 1 + LEVELS, `FINEQ_SUM_W(LW, N), LEVELS = clog2(N)), which cannot overflow:
// |sum| <= N * 2^(LW-1) <= 2^(SUM_W-2). Every node is stored SUM_W bits wide, sign-extended from its level's
// width: the same arrays at every level, which Verilator runs as vectorizable loops, and the level widths that
// synthesis maps to adders of those widths (docs/microarchitecture.md, "One description").
// Combinational. Terms beyond N (up to the next power of 2) are 0.
//
// Each level is a loop over its nodes (kept rolled in Verilator: unroll_disable) with an inner loop over the
// columns, so the simulator runs compact code for any ROWS x COLS.
`default_nettype none
`include "fineq_defs.vh"

module fineq_adder_tree #(
  parameter integer N     = 64,
  parameter integer COLS  = 1,
  parameter integer IN_W  = 8,
  parameter integer POW2  = 0,
  parameter integer SUM_W = `FINEQ_SUM_W(IN_W + POW2 * `FINEQ_POW2_SHIFT, N)
) (
  input  wire [N*COLS*IN_W-1:0] data_i,
  input  wire [N-1:0]           bits_i,
  input  wire [N-1:0]           x2_i,
  input  wire [N-1:0]           x4_i,
  input  wire [N-1:0]           neg_i,
  output wire [COLS*SUM_W-1:0]  sum_o
);

  localparam integer LW     = IN_W + POW2 * `FINEQ_POW2_SHIFT;  // a leaf's value before its sign
  localparam integer LEVELS = `FINEQ_LEVELS(N);
  localparam integer NP     = 1 << LEVELS;
  localparam integer ROW_W  = COLS * IN_W;

  initial begin
    if (N < 1 || COLS < 1) begin
      $error("%m: N (%0d) and COLS (%0d) must be positive", N, COLS);
      $finish;
    end
    if (IN_W < 2) begin
      $error("%m: IN_W (%0d) must be at least 2", IN_W);
      $finish;
    end
    if (POW2 != 0 && POW2 != 1) begin
      $error("%m: POW2 (%0d) must be 0 (the paper's PE) or 1 (the power-of-two PE)", POW2);
      $finish;
    end
    if (SUM_W != `FINEQ_SUM_W(LW, N)) begin
      $error("%m: SUM_W (%0d) must be IN_W + 2 POW2 + 1 + clog2(N) = %0d", SUM_W, `FINEQ_SUM_W(LW, N));
      $finish;
    end
  end

  // The terms' rows as an array (row n = the COLS terms of row n), padded with zero rows to NP.
  wire [ROW_W-1:0] row [0:NP-1];
  wire [NP-1:0]    bits = {{(NP-N){1'b0}}, bits_i};
  wire [NP-1:0]    negs = {{(NP-N){1'b0}}, neg_i};
  wire [NP-1:0]    x2s  = {{(NP-N){1'b0}}, x2_i};
  wire [NP-1:0]    x4s  = {{(NP-N){1'b0}}, x4_i};

  genvar n, l, c;
  generate
    for (n = 0; n < NP; n = n + 1) begin : g_row
      if (n < N) begin : g_term
        assign row[n] = data_i[n*ROW_W +: ROW_W];
      end else begin : g_pad
        assign row[n] = {ROW_W{1'b0}};
      end
    end

    for (l = 0; l <= LEVELS; l = l + 1) begin : g_level
      localparam integer CNT = NP >> l;
      reg signed [SUM_W-1:0] node [0:CNT-1][0:COLS-1];
      if (l == 0 && POW2 != 0) begin : g_leaf_pow2
        // The power-of-two PE: x, 2x or 4x (one-hot selects), then the weight's sign.
        always @* begin : p_leaf
          integer i, j;
          reg [IN_W-1:0]      a;  // the PE's activation
          reg [LW-1:0]        e;  // ... sign-extended to LW bits
          reg [LW-1:0]        p;  // the PE's output: e, e << 1, e << 2 or 0
          reg [LW:0]          x;  // ... sign-extended to LW + 1 bits
          reg signed [LW:0]   t;  // ... with the weight's sign applied (sign-extended to SUM_W when stored)
          /*verilator unroll_disable*/
          for (i = 0; i < CNT; i = i + 1)
            for (j = 0; j < COLS; j = j + 1) begin
              a = row[i][j*IN_W +: IN_W];
              e = {{(LW-IN_W){a[IN_W-1]}}, a};
              p = ({LW{bits[i]}} & e) | ({LW{x2s[i]}} & {e[LW-2:0], 1'b0}) | ({LW{x4s[i]}} & {e[LW-3:0], 2'b00});
              x = {p[LW-1], p};
              t = negs[i] ? -x : x;
              /* verilator lint_off WIDTHEXPAND */  // sign extension of a signed value: the intent
              node[i][j] = t;
              /* verilator lint_on WIDTHEXPAND */
            end
        end
      end else if (l == 0) begin : g_leaf
        wire unused_x = ^{x2s, x4s};  // read only with POW2 = 1
        always @* begin : p_leaf
          integer i, j;
          reg [IN_W-1:0]      p;  // the PE's output: its activation on a 1-bit, else 0
          reg [IN_W:0]        x;  // ... sign-extended to IN_W + 1 bits
          reg signed [IN_W:0] t;  // ... with the weight's sign applied (sign-extended to SUM_W when stored)
          /*verilator unroll_disable*/
          for (i = 0; i < CNT; i = i + 1)
            for (j = 0; j < COLS; j = j + 1) begin
              p = bits[i] ? row[i][j*IN_W +: IN_W] : {IN_W{1'b0}};
              x = {p[IN_W-1], p};
              t = negs[i] ? -x : x;
              /* verilator lint_off WIDTHEXPAND */  // sign extension of a signed value: the intent
              node[i][j] = t;
              /* verilator lint_on WIDTHEXPAND */
            end
        end
      end else begin : g_sum
        // A level-l node is the sum of two level-(l-1) nodes: it fits in W = LW + 1 + l bits, so it is the
        // W-bit sum of the operands' low W bits (their values, sign included), sign-extended to SUM_W by the
        // assignment from a signed W-bit value (no change of value). That gives synthesis each adder's width.
        localparam integer W = LW + 1 + l;
        always @* begin : p_sum
          integer i, j;
          reg signed [W-1:0] s;
          /*verilator unroll_disable*/
          for (i = 0; i < CNT; i = i + 1)
            for (j = 0; j < COLS; j = j + 1) begin
              s = g_level[l-1].node[2*i][j][W-1:0] + g_level[l-1].node[2*i+1][j][W-1:0];
              /* verilator lint_off WIDTHEXPAND */  // sign extension of a signed value: the intent
              node[i][j] = s;
              /* verilator lint_on WIDTHEXPAND */
            end
        end
      end
    end

    for (c = 0; c < COLS; c = c + 1) begin : g_col
      assign sum_o[c*SUM_W +: SUM_W] = g_level[LEVELS].node[0][c];
    end
  endgenerate

endmodule

`resetall
