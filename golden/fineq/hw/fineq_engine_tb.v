// Job-file testbench for fineq_gemm_engine on event-driven simulators (Icarus): the same
// protocol as harness.cpp, in Verilog-2005. Not part of the design (rtl/); package data of fineq.hw.
//
// Plusargs: +act=FILE +wgt=FILE (hex, one beat per line, lane 0 in the low bits) +out=FILE [+vcd=FILE]
//           +m=M +k=K +nact=N +nwgt=N +stall=PERCENT +seed=S +limit=CYCLES
// Output file: the engine's cycle counter on the first line, then one output row per line (hex).
`timescale 1ns / 1ps
`default_nettype none

module fineq_engine_tb #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer PSUM_DEPTH = 256,
  parameter integer CODING     = 0,
  parameter integer MAX_BEATS  = 1 << 20
);
  localparam integer BPV   = (ROWS + 16 + 23) / 24;
  localparam integer ACC_W = 32;

  reg clk = 1'b0;
  reg rst_n = 1'b0;
  reg start = 1'b0;
  reg [15:0] cfg_m = 16'd0;
  reg [21:0] cfg_k = 22'd0;
  reg act_valid = 1'b0, wgt_valid = 1'b0, out_ready = 1'b0;
  reg [COLS*8-1:0] act_data = {COLS*8{1'b0}};
  reg [BPV*56-1:0] wgt_data = {BPV*56{1'b0}};
  wire act_ready, wgt_ready, out_valid, busy, done, cfg_err;
  wire [31:0] cycles;
  wire [COLS*ACC_W-1:0] out_data;

  fineq_gemm_engine #(.ROWS(ROWS), .COLS(COLS), .PSUM_DEPTH(PSUM_DEPTH), .CODING(CODING)) dut (
    .clk_i(clk), .rst_ni(rst_n), .start_i(start), .cfg_m_i(cfg_m), .cfg_k_i(cfg_k), .busy_o(busy),
    .done_o(done), .cfg_err_o(cfg_err), .cycles_o(cycles), .act_valid_i(act_valid), .act_ready_o(act_ready),
    .act_data_i(act_data), .wgt_valid_i(wgt_valid), .wgt_ready_o(wgt_ready), .wgt_data_i(wgt_data),
    .out_valid_o(out_valid), .out_ready_i(out_ready), .out_data_o(out_data)
  );

  reg [COLS*8-1:0] act_mem [0:MAX_BEATS-1];
  reg [BPV*56-1:0] wgt_mem [0:MAX_BEATS-1];
  reg [1023:0] act_file, wgt_file, out_file, vcd_file;
  integer m, k, nact, nwgt, stall, seed, limit, fd;
  integer ia, iw, io, cyc;
  reg act_fire, wgt_fire, out_fire, finished;

  function stalled;
    input integer dummy;
    begin
      stalled = (stall > 0) && (($unsigned($random(seed)) % 100) < stall);
    end
  endfunction

  initial begin
    if (!$value$plusargs("act=%s", act_file) || !$value$plusargs("wgt=%s", wgt_file) ||
        !$value$plusargs("out=%s", out_file) || !$value$plusargs("m=%d", m) || !$value$plusargs("k=%d", k) ||
        !$value$plusargs("nact=%d", nact) || !$value$plusargs("nwgt=%d", nwgt)) begin
      $display("fineq_engine_tb: missing plusargs");
      $finish;
    end
    if (!$value$plusargs("stall=%d", stall)) stall = 0;
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    if (!$value$plusargs("limit=%d", limit)) limit = 100000000;
    if (nact > MAX_BEATS || nwgt > MAX_BEATS) begin
      $display("fineq_engine_tb: more beats than MAX_BEATS");
      $finish;
    end
    if ($value$plusargs("vcd=%s", vcd_file)) begin
      $dumpfile(vcd_file);
      $dumpvars(0, fineq_engine_tb);
    end
    $readmemh(act_file, act_mem, 0, nact - 1);
    $readmemh(wgt_file, wgt_mem, 0, nwgt - 1);
    fd = $fopen(out_file, "w");
    ia = 0; iw = 0; io = 0; cyc = 0; finished = 1'b0;
    repeat (2) #5 clk = ~clk;
    rst_n = 1'b1;
    cfg_m = m[15:0];
    cfg_k = k[21:0];
    start = 1'b1;
    while (!finished) begin
      if (cyc >= limit) begin
        $display("fineq_engine_tb: timeout: no done_o within the cycle limit");
        $finish;
      end
      if (cyc > 0) begin
        start = 1'b0;
        if (!act_valid && ia < nact && !stalled(0)) begin act_data = act_mem[ia]; act_valid = 1'b1; end
        if (!wgt_valid && iw < nwgt && !stalled(0)) begin wgt_data = wgt_mem[iw]; wgt_valid = 1'b1; end
      end
      out_ready = !stalled(0);
      #1;
      act_fire = act_valid && act_ready;
      wgt_fire = wgt_valid && wgt_ready;
      out_fire = out_valid && out_ready;
      if (out_fire) begin
        io = io + 1;
        $fwrite(fd, "R %h\n", out_data);
      end
      if (cyc > 0 && done) finished = 1'b1;
      #4 clk = 1'b1;
      #5 clk = 1'b0;
      cyc = cyc + 1;
      if (act_fire) begin ia = ia + 1; act_valid = 1'b0; end
      if (wgt_fire) begin iw = iw + 1; wgt_valid = 1'b0; end
    end
    if (ia != nact || iw != nwgt || io != m || cfg_err) begin
      $display("fineq_engine_tb: protocol error: took %0d/%0d act, %0d/%0d weight beats, sent %0d/%0d rows",
               ia, nact, iw, nwgt, io, m);
      $finish;
    end
    $fwrite(fd, "C %0d %0d\n", cycles, cyc);
    $fclose(fd);
    $finish;
  end
endmodule
`resetall
