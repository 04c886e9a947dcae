// ROWS x COLS input-stationary PE array with one signed adder tree per column.
//
// PE (r, c) holds activation X[k0 + r, c]; act_we_i[r] loads row r from
// act_row_i (lane c in bits [ACT_W*c +: ACT_W]). Weights stream through as
// bitstreams: bits_i[r] / signs_i[r] are row r's temporal bit and weight sign,
// shared by every column. Column c's tree sums sign_r * out(r, c) over r:
// col_sum_o[c] = sum_r (bits_i[r] ? (signs_i[r] ? -x : x) : 0), SUM_W bits.
`default_nettype none

module fineq_pe_array #(
  parameter integer ROWS  = 64,
  parameter integer COLS  = 64,
  parameter integer ACT_W = 8,
  parameter integer SUM_W = ACT_W + 1 + ((ROWS > 1) ? $clog2(ROWS) : 1)
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  input  wire [ROWS-1:0]       act_we_i,
  input  wire [COLS*ACT_W-1:0] act_row_i,
  input  wire [ROWS-1:0]       bits_i,
  input  wire [ROWS-1:0]       signs_i,
  output wire [COLS*SUM_W-1:0] col_sum_o
);

  initial begin
    if (ROWS < 1 || COLS < 1) begin
      $error("fineq_pe_array: ROWS (%0d) and COLS (%0d) must be positive", ROWS, COLS);
      $finish;
    end
  end

  genvar r, c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      wire [ROWS*ACT_W-1:0] pe_out;
      for (r = 0; r < ROWS; r = r + 1) begin : g_row
        fineq_pe #(.ACT_W(ACT_W)) u_pe (
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
        .sum_o (col_sum_o[c*SUM_W +: SUM_W])
      );
    end
  endgenerate

endmodule

`resetall
