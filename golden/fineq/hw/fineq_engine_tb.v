// Job-file testbench for fineq_gemm_engine on event-driven simulators (Icarus): it reads the same job file as
// harness.cpp (fineq.hw.job: header, activation beats, weight beats), in Verilog-2005. Not part of the design
// (rtl/); package data of fineq.hw.
//
// Plusargs: +job=FILE +out=FILE [+vcd=FILE]
// Output file: one output row per line ("R <hex>", lane 0 in the low bits), then "C <cycles_o> <clock cycles>".
`timescale 1ns / 1ps
`default_nettype none
`include "fineq_defs.vh"

module fineq_engine_tb #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer PSUM_DEPTH = 256,
  parameter integer CODING     = 0,
  parameter integer MAX_BYTES  = 1 << 24
);
  localparam integer BPV    = `FINEQ_BPV(ROWS);
  localparam integer ACC_W  = 32;
  localparam integer ACT_B  = COLS;                               // bytes per activation beat
  localparam integer WGT_B  = BPV * `FINEQ_BLOCK_BITS / 8;        // bytes per weight beat
  localparam integer HEAD_B = 8 + 8 * 4 + 8 + 8;                  // bytes of the job header

  reg clk = 1'b0;
  reg rst_n = 1'b0;
  reg start = 1'b0;
  reg [15:0] cfg_m = 16'd0;
  reg [21:0] cfg_k = 22'd0;
  reg act_valid = 1'b0, wgt_valid = 1'b0, out_ready = 1'b0;
  reg [COLS*`FINEQ_ACT_W-1:0] act_data = {COLS*`FINEQ_ACT_W{1'b0}};
  reg [BPV*`FINEQ_BLOCK_BITS-1:0] wgt_data = {BPV*`FINEQ_BLOCK_BITS{1'b0}};
  wire act_ready, wgt_ready, out_valid, busy, done, cfg_err;
  wire [31:0] cycles;
  wire [COLS*ACC_W-1:0] out_data;

  fineq_gemm_engine #(.ROWS(ROWS), .COLS(COLS), .PSUM_DEPTH(PSUM_DEPTH), .CODING(CODING), .CLOCK_GATE(1)) dut (
    .clk_i(clk), .rst_ni(rst_n), .start_i(start), .cfg_m_i(cfg_m), .cfg_k_i(cfg_k), .busy_o(busy),
    .done_o(done), .cfg_err_o(cfg_err), .cycles_o(cycles), .act_valid_i(act_valid), .act_ready_o(act_ready),
    .act_data_i(act_data), .wgt_valid_i(wgt_valid), .wgt_ready_o(wgt_ready), .wgt_data_i(wgt_data),
    .out_valid_o(out_valid), .out_ready_i(out_ready), .out_data_o(out_data)
  );

  reg [7:0] job [0:MAX_BYTES-1];
  reg [1023:0] job_file, out_file, vcd_file;
  integer m, k, nact, nwgt, stall, seed, limit, fd, nbytes, act0, wgt0, b;
  integer ia, iw, io, cyc;
  reg act_fire, wgt_fire, out_fire, finished;

  function [31:0] u32;
    input integer o;
    begin
      u32 = {job[o+3], job[o+2], job[o+1], job[o]};
    end
  endfunction

  function [63:0] u64;
    input integer o;
    begin
      u64 = {u32(o + 4), u32(o)};
    end
  endfunction

  function stalled;
    input integer dummy;
    begin
      stalled = (stall > 0) && (($unsigned($random(seed)) % 100) < stall);
    end
  endfunction

  initial begin
    if (!$value$plusargs("job=%s", job_file) || !$value$plusargs("out=%s", out_file)) begin
      $display("fineq_engine_tb: missing plusargs (+job=FILE +out=FILE)");
      $finish;
    end
    fd = $fopen(job_file, "rb");
    if (fd == 0) begin
      $display("fineq_engine_tb: cannot open the job file");
      $finish;
    end
    nbytes = $fread(job, fd);
    $fclose(fd);
    if (nbytes < HEAD_B || {job[0], job[1], job[2], job[3], job[4], job[5], job[6], job[7]} != "FQJOB001") begin
      $display("fineq_engine_tb: not a FineQ job file");
      $finish;
    end
    if (u32(8) != ROWS || u32(12) != COLS || u32(16) != BPV) begin
      $display("fineq_engine_tb: the job is for a %0dx%0d engine, this one is %0dx%0d", u32(8), u32(12), ROWS, COLS);
      $finish;
    end
    m = u32(20); k = u32(24); nact = u32(28); nwgt = u32(32); seed = u32(36) + 1;
    stall = $rtoi($bitstoreal(u64(40)) * 100.0 + 0.5);
    limit = u64(48);
    act0 = HEAD_B;
    wgt0 = act0 + nact * ACT_B;
    if (nbytes != wgt0 + nwgt * WGT_B) begin
      $display("fineq_engine_tb: job file of %0d bytes, expected %0d (MAX_BYTES %0d)", nbytes, wgt0 + nwgt * WGT_B,
               MAX_BYTES);
      $finish;
    end
    if ($value$plusargs("vcd=%s", vcd_file)) begin
      $dumpfile(vcd_file);
      $dumpvars(0, fineq_engine_tb);
    end
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
        if (!act_valid && ia < nact && !stalled(0)) begin
          for (b = 0; b < ACT_B; b = b + 1) act_data[8*b +: 8] = job[act0 + ia * ACT_B + b];
          act_valid = 1'b1;
        end
        if (!wgt_valid && iw < nwgt && !stalled(0)) begin
          for (b = 0; b < WGT_B; b = b + 1) wgt_data[8*b +: 8] = job[wgt0 + iw * WGT_B + b];
          wgt_valid = 1'b1;
        end
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
