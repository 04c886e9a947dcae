// ROWS x COLS input-stationary PE array with one signed adder tree per column.
//
// PE (r, c) holds activation X[k0 + r, c]; act_we_i[r] loads row r from
// act_row_i (lane c in bits [ACT_W*c +: ACT_W]). Weights stream through as
// bitstreams: bits_i[r] / signs_i[r] are row r's temporal bit and weight sign,
// shared by every column. Column c's tree sums sign_r * out(r, c) over r:
// tree(c) = sum_r (bits_i[r] ? (signs_i[r] ? -x : x) : 0), SUM_W bits.
//
// PIPE = 1: col_sum_o[c] is tree(c) registered on a cycle with en_i high (it
// holds otherwise): one cycle of latency, and the PE -> tree -> accumulator
// path is cut after the tree. PIPE = 0: col_sum_o is tree(c), combinational,
// and en_i is unused.
// CLOCK_GATE = 1: the PE activation registers and the pipeline register are
// clocked through clock gates (fineq_clock_gate) enabled by their loads.
`default_nettype none

module fineq_pe_array #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer ACT_W      = 8,
  parameter integer PIPE       = 1,
  parameter integer CLOCK_GATE = 1,
  parameter integer SUM_W      = ACT_W + 1 + ((ROWS > 1) ? $clog2(ROWS) : 1)
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  input  wire [ROWS-1:0]       act_we_i,
  input  wire [COLS*ACT_W-1:0] act_row_i,
  input  wire [ROWS-1:0]       bits_i,
  input  wire [ROWS-1:0]       signs_i,
  input  wire                  en_i,
  output wire [COLS*SUM_W-1:0] col_sum_o
);

  initial begin
    if (ROWS < 1 || COLS < 1) begin
      $error("fineq_pe_array: ROWS (%0d) and COLS (%0d) must be positive", ROWS, COLS);
      $finish;
    end
    if ((PIPE != 0 && PIPE != 1) || (CLOCK_GATE != 0 && CLOCK_GATE != 1)) begin
      $error("fineq_pe_array: PIPE (%0d) and CLOCK_GATE (%0d) must be 0 or 1", PIPE, CLOCK_GATE);
      $finish;
    end
  end

  genvar r, c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      wire [ROWS*ACT_W-1:0] pe_out;
      wire [SUM_W-1:0]      tree_sum;
      for (r = 0; r < ROWS; r = r + 1) begin : g_row
        fineq_pe #(.ACT_W(ACT_W), .CLOCK_GATE(CLOCK_GATE)) u_pe (
          .clk_i (clk_i),
          .rst_ni(rst_ni),
          .load_i(act_we_i[r]),
          .act_i (act_row_i[c*ACT_W +: ACT_W]),
          .bit_i (bits_i[r]),
          .out_o (pe_out[r*ACT_W +: ACT_W])
        );
      end
      fineq_adder_tree #(.N(ROWS), .IN_W(ACT_W)) u_tree (
        .data_i(pe_out),
        .neg_i (signs_i),
        .sum_o (tree_sum)
      );
      if (PIPE != 0) begin : g_pipe
        fineq_en_reg #(.WIDTH(SUM_W), .CLOCK_GATE(CLOCK_GATE)) u_sum (
          .clk_i (clk_i),
          .rst_ni(rst_ni),
          .en_i  (en_i),
          .d_i   (tree_sum),
          .q_o   (col_sum_o[c*SUM_W +: SUM_W])
        );
      end else begin : g_comb
        assign col_sum_o[c*SUM_W +: SUM_W] = tree_sum;
      end
    end
  endgenerate

endmodule

`resetall
