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
//
// LOOPS selects one of two descriptions of the same array:
// - LOOPS = 0 (g_cells, the default and what is synthesized): structural, one
//   fineq_pe (activation register, clock-gated if CLOCK_GATE = 1) per PE and
//   one fineq_adder_tree per column;
// - LOOPS = 1 (g_loops, CLOCK_GATE = 0 only): the PE registers as a ROWS x COLS
//   array with load enables and the COLS trees as one node array per level
//   (level l: NP >> l nodes x COLS, ACT_W + 1 + l bits, as in
//   fineq_adder_tree), each level a loop over its nodes. Verilator unrolls the
//   short loop over the columns and keeps the loops over rows and nodes
//   (unroll_disable): compact code instead of 4,096 inlined PE instances,
//   about 2.5 times faster. The native harness runs this form. Yosys 0.23
//   maps it to a slightly larger, slower tree than the structural one
//   (docs/microarchitecture.md), so synthesis keeps LOOPS = 0.
// Both compute the same col_sum_o on every cycle (tb/fineq_pe_array and
// tests/test_hw.py run both against the golden model).
`default_nettype none

module fineq_pe_array #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer ACT_W      = 8,
  parameter integer PIPE       = 1,
  parameter integer CLOCK_GATE = 1,
  parameter integer LOOPS      = 0,
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
    if ((LOOPS != 0 && LOOPS != 1) || (LOOPS == 1 && CLOCK_GATE != 0)) begin
      $error("fineq_pe_array: LOOPS (%0d) must be 0, or 1 with CLOCK_GATE = 0", LOOPS);
      $finish;
    end
  end

  localparam integer LEVELS = (ROWS > 1) ? $clog2(ROWS) : 1;
  localparam integer NP     = 1 << LEVELS;

  wire [COLS*SUM_W-1:0] tree_sum;

  genvar r, c, l;
  generate
    if (LOOPS == 0) begin : g_cells
      for (c = 0; c < COLS; c = c + 1) begin : g_col
        wire [ROWS*ACT_W-1:0] pe_out;
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
          .sum_o (tree_sum[c*SUM_W +: SUM_W])
        );
      end
    end else begin : g_loops
      reg        [ACT_W-1:0] act_q [0:ROWS-1][0:COLS-1];

      always @(posedge clk_i or negedge rst_ni) begin : p_act
        integer i, j;
        if (!rst_ni) begin
          /*verilator unroll_disable*/
          for (i = 0; i < ROWS; i = i + 1)
            for (j = 0; j < COLS; j = j + 1) act_q[i][j] <= {ACT_W{1'b0}};
        end else begin
          /*verilator unroll_disable*/
          for (i = 0; i < ROWS; i = i + 1)
            if (act_we_i[i])
              for (j = 0; j < COLS; j = j + 1) act_q[i][j] <= act_row_i[j*ACT_W +: ACT_W];
        end
      end

      for (l = 0; l <= LEVELS; l = l + 1) begin : g_level
        localparam integer W   = ACT_W + 1 + l;
        localparam integer CNT = NP >> l;
        reg signed [W-1:0] node [0:CNT-1][0:COLS-1];
        if (l == 0) begin : g_leaf
          always @* begin : p_leaf
            integer i, j;
            /*verilator unroll_disable*/
            for (i = 0; i < CNT; i = i + 1)
              for (j = 0; j < COLS; j = j + 1)
                if (i >= ROWS || !bits_i[i]) node[i][j] = {W{1'b0}};
                else if (signs_i[i])        node[i][j] = -{act_q[i][j][ACT_W-1], act_q[i][j]};
                else                        node[i][j] = {act_q[i][j][ACT_W-1], act_q[i][j]};
          end
        end else begin : g_sum
          always @* begin : p_sum
            integer i, j;
            /*verilator unroll_disable*/
            for (i = 0; i < CNT; i = i + 1)
              for (j = 0; j < COLS; j = j + 1)
                node[i][j] = g_level[l-1].node[2*i][j] + g_level[l-1].node[2*i+1][j];
          end
        end
      end

      for (c = 0; c < COLS; c = c + 1) begin : g_col
        assign tree_sum[c*SUM_W +: SUM_W] = g_level[LEVELS].node[0][c];
      end
    end

    for (c = 0; c < COLS; c = c + 1) begin : g_col
      if (PIPE != 0) begin : g_pipe
        fineq_en_reg #(.WIDTH(SUM_W), .CLOCK_GATE(CLOCK_GATE)) u_sum (
          .clk_i (clk_i),
          .rst_ni(rst_ni),
          .en_i  (en_i),
          .d_i   (tree_sum[c*SUM_W +: SUM_W]),
          .q_o   (col_sum_o[c*SUM_W +: SUM_W])
        );
      end else begin : g_comb
        assign col_sum_o[c*SUM_W +: SUM_W] = tree_sum[c*SUM_W +: SUM_W];
      end
    end
  endgenerate

endmodule

`resetall
