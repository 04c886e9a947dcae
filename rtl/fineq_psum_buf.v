// Partial-sum buffer of the GEMM engine: DEPTH rows of WIDTH bits (one chunk's column sums between K tiles).
// One write port (we_i, waddr_i, wdata_i; written at the clock edge) and one asynchronous read port
// (rdata_o = row raddr_i). A register file here; an SRAM macro with the same ports can replace this file
// (a macro with a synchronous read needs raddr_i one cycle earlier: the engine's am_d).
// No reset: a row is always written (first K tile) before it is read.
`default_nettype none
`include "fineq_defs.vh"

module fineq_psum_buf #(
  parameter integer DEPTH = 256,
  parameter integer WIDTH = 2048,
  parameter integer AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
  input  wire             clk_i,
  input  wire             we_i,
  input  wire [AW-1:0]    waddr_i,
  input  wire [WIDTH-1:0] wdata_i,
  input  wire [AW-1:0]    raddr_i,
  output wire [WIDTH-1:0] rdata_o
);

  initial begin
    if (DEPTH < 1 || WIDTH < 1) begin
      $error("%m: DEPTH (%0d) and WIDTH (%0d) must be positive", DEPTH, WIDTH);
      $finish;
    end
    if (AW != ((DEPTH > 1) ? $clog2(DEPTH) : 1)) begin
      $error("%m: AW (%0d) must be clog2(DEPTH) for DEPTH = %0d", AW, DEPTH);
      $finish;
    end
  end

  reg [WIDTH-1:0] mem_q [0:DEPTH-1];

  always @(posedge clk_i) begin
    if (we_i) mem_q[waddr_i] <= wdata_i;
  end

  assign rdata_o = mem_q[raddr_i];

endmodule

`resetall
