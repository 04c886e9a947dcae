// Baseline: ROWS x COLS input-stationary MAC systolic array (the paper's comparison point).
//
// PE (r, c) holds activation X[k0 + r, c] (act_we_i[r] loads row r from
// act_row_i, lane c in bits [8c +: 8]). Weights enter at the left edge, one
// per row (w_i[W_W*r +: W_W], W_W-bit sign-magnitude, mac_pe) and move one column right per
// cycle; partial sums move one row down per cycle, starting from 0 at the top.
// The driver skews the weights: row r gets the weight of output row m at cycle
// m + r; column c's bottom output psum_o[c] then holds sum_r v[m, r] * X[r, c]
// from cycle m + ROWS + c on (registered at every hop).
`default_nettype none
`include "fineq_defs.vh"

module mac_systolic_array #(
  parameter integer ROWS   = 64,
  parameter integer COLS   = 64,
  parameter integer ACT_W  = `FINEQ_ACT_W,
  parameter integer W_W    = `FINEQ_W_BITS,
  parameter integer CLOCK_GATE = 1,
  parameter integer PSUM_W = `FINEQ_MAC_PSUM_W(ACT_W, W_W, ROWS)
) (
  input  wire                   clk_i,
  input  wire                   rst_ni,
  input  wire [ROWS-1:0]        act_we_i,
  input  wire [COLS*ACT_W-1:0]  act_row_i,
  input  wire [ROWS*W_W-1:0]    w_i,
  output wire [COLS*PSUM_W-1:0] psum_o
);

  initial begin
    if (ROWS < 1 || COLS < 1) begin
      $error("%m: ROWS (%0d) and COLS (%0d) must be positive", ROWS, COLS);
      $finish;
    end
  end

  // w_h[r][c] is the weight entering PE (r, c); psum_v[r][c] the partial sum entering it.
  wire [W_W*(COLS+1)-1:0]    w_h    [0:ROWS-1];
  wire [PSUM_W*COLS-1:0]     psum_v [0:ROWS];

  assign psum_v[0] = {PSUM_W*COLS{1'b0}};

  genvar r, c;
  generate
    for (r = 0; r < ROWS; r = r + 1) begin : g_row
      assign w_h[r][W_W-1:0] = w_i[W_W*r +: W_W];
      for (c = 0; c < COLS; c = c + 1) begin : g_col
        mac_pe #(.ACT_W(ACT_W), .W_W(W_W), .PSUM_W(PSUM_W), .CLOCK_GATE(CLOCK_GATE)) u_pe (
          .clk_i (clk_i),
          .rst_ni(rst_ni),
          .load_i(act_we_i[r]),
          .act_i (act_row_i[c*ACT_W +: ACT_W]),
          .w_i   (w_h[r][W_W*c +: W_W]),
          .psum_i(psum_v[r][PSUM_W*c +: PSUM_W]),
          .w_o   (w_h[r][W_W*(c+1) +: W_W]),
          .psum_o(psum_v[r+1][PSUM_W*c +: PSUM_W])
        );
      end
    end
  endgenerate

  assign psum_o = psum_v[ROWS];

endmodule

`resetall
