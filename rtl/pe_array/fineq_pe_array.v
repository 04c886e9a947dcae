// ROWS x COLS input-stationary PE array with one signed adder tree per column.
//
// PE (r, c) holds activation X[k0 + r, c]; act_we_i[r] loads row r from act_row_i (lane c in bits
// [ACT_W*c +: ACT_W]). Weights stream through as bitstreams: bits_i[r] / signs_i[r] are row r's temporal bit
// and weight sign, shared by every column. PE (r, c) passes its activation to column c's tree on a cycle whose
// bit is 1 (no multiplier), and the tree sums the sign-applied terms:
//   tree(c) = sum_r (bits_i[r] ? (signs_i[r] ? -x(r, c) : x(r, c)) : 0), SUM_W bits (fineq_adder_tree).
// The activation registers are one fineq_en_reg per row (the ROWS x COLS PE registers, row r enabled by
// act_we_i[r]); the PEs' select and the sign are the leaves of fineq_adder_tree.
// POW2 = 1 (the power-of-two PE, a variant outside the spec, for the pow2 codebook's levels 1, 2, 4): PE (r, c)
// passes x(r, c) if bits_i[r], 2 x(r, c) if x2_i[r], 4 x(r, c) if x4_i[r] (one-hot per row), and the column sums
// are 2 bits wider: SUM_W = `FINEQ_SUM_W(ACT_W + 2, ROWS). POW2 = 0: x2_i and x4_i are unused.
//
// PIPE = 1: col_sum_o is the trees' sums registered on a cycle with en_i high (it holds otherwise): one cycle
// of latency, and the PE -> tree -> accumulator path is cut after the tree. PIPE = 0: col_sum_o is the
// trees' sums, combinational, and en_i is unused.
// CLOCK_GATE = 1: the activation registers and the pipeline register are clocked through clock gates
// (fineq_clock_gate) enabled by their loads; CLOCK_GATE = 0: registers with load multiplexers. It changes no
// bit and no cycle (docs/microarchitecture.md, "One description").
// This one description is what is simulated and what is synthesized.
`default_nettype none
`include "fineq_defs.vh"

module fineq_pe_array #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer ACT_W      = `FINEQ_ACT_W,
  parameter integer PIPE       = 1,
  parameter integer CLOCK_GATE = 1,
  parameter integer POW2       = 0,
  parameter integer SUM_W      = `FINEQ_SUM_W(ACT_W + POW2 * `FINEQ_POW2_SHIFT, ROWS)
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  input  wire [ROWS-1:0]       act_we_i,
  input  wire [COLS*ACT_W-1:0] act_row_i,
  input  wire [ROWS-1:0]       bits_i,
  input  wire [ROWS-1:0]       x2_i,
  input  wire [ROWS-1:0]       x4_i,
  input  wire [ROWS-1:0]       signs_i,
  input  wire                  en_i,
  output wire [COLS*SUM_W-1:0] col_sum_o
);

  initial begin
    if (ROWS < 1 || COLS < 1) begin
      $error("%m: ROWS (%0d) and COLS (%0d) must be positive", ROWS, COLS);
      $finish;
    end
    if ((PIPE != 0 && PIPE != 1) || (CLOCK_GATE != 0 && CLOCK_GATE != 1) || (POW2 != 0 && POW2 != 1)) begin
      $error("%m: PIPE (%0d), CLOCK_GATE (%0d) and POW2 (%0d) must be 0 or 1", PIPE, CLOCK_GATE, POW2);
      $finish;
    end
    if (SUM_W != `FINEQ_SUM_W(ACT_W + POW2 * `FINEQ_POW2_SHIFT, ROWS)) begin
      $error("%m: SUM_W (%0d) must be ACT_W + 2 POW2 + 1 + clog2(ROWS) = %0d", SUM_W,
             `FINEQ_SUM_W(ACT_W + POW2 * `FINEQ_POW2_SHIFT, ROWS));
      $finish;
    end
  end

  localparam integer ROW_W = COLS * ACT_W;

  wire [ROWS*ROW_W-1:0] act_q;     // PE (r, c) in [(r*COLS + c)*ACT_W +: ACT_W]
  wire [COLS*SUM_W-1:0] tree_sum;

  genvar r;
  generate
    for (r = 0; r < ROWS; r = r + 1) begin : g_row
      fineq_en_reg #(.WIDTH(ROW_W), .CLOCK_GATE(CLOCK_GATE)) u_act (
        .clk_i (clk_i),
        .rst_ni(rst_ni),
        .en_i  (act_we_i[r]),
        .d_i   (act_row_i),
        .q_o   (act_q[r*ROW_W +: ROW_W])
      );
    end
  endgenerate

  fineq_adder_tree #(.N(ROWS), .COLS(COLS), .IN_W(ACT_W), .POW2(POW2), .SUM_W(SUM_W)) u_tree (
    .data_i(act_q),
    .bits_i(bits_i),
    .x2_i  (x2_i),
    .x4_i  (x4_i),
    .neg_i (signs_i),
    .sum_o (tree_sum)
  );

  generate
    if (PIPE != 0) begin : g_pipe
      fineq_en_reg #(.WIDTH(COLS*SUM_W), .CLOCK_GATE(CLOCK_GATE)) u_sum (
        .clk_i (clk_i),
        .rst_ni(rst_ni),
        .en_i  (en_i),
        .d_i   (tree_sum),
        .q_o   (col_sum_o)
      );
    end else begin : g_comb
      wire unused_en = en_i;
      assign col_sum_o = tree_sum;
    end
  endgenerate

endmodule

`resetall
