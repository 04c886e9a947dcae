// Native Verilator harness for fineq_gemm_engine: no Python in the per-cycle loop.
//
// usage: fineq_engine JOB RESULT
//
// JOB (little-endian, written by fineq.hw.native.write_job):
//   char[8] "FQJOB001"; u32 rows, cols, bpv, m, k, n_act, n_wgt, seed; f64 stall; u64 max_cycles
//   n_act activation beats of cols bytes (lane c = X[k, c], int8)
//   n_wgt weight beats of bpv * 7 bytes (block b at bytes 7b..7b+6, the spec's byte order)
// RESULT:
//   char[8] "FQRES001"; u32 m, cols; u64 engine_cycles (cycles_o), sim_cycles; f64 seconds
//   m rows of cols int32 (Y, the engine's output beats in order)
//
// Streams are valid/ready. With stall > 0, each source idles a cycle with that probability
// before offering a beat (a beat once offered is held until taken) and the output sink drops
// ready with that probability, as the cocotb testbench's agents do. Exit status 0: finished;
// 2: bad job; 3: timeout or protocol error (message on stderr).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include "Vfineq_gemm_engine.h"
#include "verilated.h"

namespace {

struct Job {
  uint32_t rows, cols, bpv, m, k, n_act, n_wgt, seed;
  double stall;
  uint64_t max_cycles;
  std::vector<uint8_t> act, wgt;
};

[[noreturn]] void fail(int code, const char* msg) {
  std::fprintf(stderr, "fineq_engine: %s\n", msg);
  std::exit(code);
}

template <typename T>
void read_exact(std::FILE* f, T* dst, size_t n) {
  if (std::fread(dst, sizeof(T), n, f) != n) fail(2, "job file is truncated");
}

Job read_job(const char* path) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) fail(2, "cannot open the job file");
  char magic[8];
  read_exact(f, magic, 8);
  if (std::memcmp(magic, "FQJOB001", 8) != 0) fail(2, "not a FineQ job file");
  Job j{};
  uint32_t hdr[8];
  read_exact(f, hdr, 8);
  j.rows = hdr[0]; j.cols = hdr[1]; j.bpv = hdr[2]; j.m = hdr[3];
  j.k = hdr[4]; j.n_act = hdr[5]; j.n_wgt = hdr[6]; j.seed = hdr[7];
  read_exact(f, &j.stall, 1);
  read_exact(f, &j.max_cycles, 1);
  j.act.resize(size_t(j.n_act) * j.cols);
  j.wgt.resize(size_t(j.n_wgt) * j.bpv * 7);
  read_exact(f, j.act.data(), j.act.size());
  read_exact(f, j.wgt.data(), j.wgt.size());
  std::fclose(f);
  return j;
}

// Copy nbytes little-endian bytes into a port (an integer or a VlWide of 32-bit words).
template <typename P>
void set_port(P& port, const uint8_t* src, size_t nbytes) {
  if constexpr (std::is_integral_v<P>) {
    P v = 0;
    for (size_t i = 0; i < nbytes && i < sizeof(P); ++i) v |= P(src[i]) << (8 * i);
    port = v;
  } else {
    const size_t words = sizeof(port) / sizeof(port[0]);
    for (size_t w = 0; w < words; ++w) {
      uint32_t v = 0;
      for (size_t b = 0; b < 4; ++b) {
        const size_t i = 4 * w + b;
        if (i < nbytes) v |= uint32_t(src[i]) << (8 * b);
      }
      port[w] = v;
    }
  }
}

template <typename P>
void clear_port(P& port) {
  if constexpr (std::is_integral_v<P>) {
    port = 0;
  } else {
    for (size_t w = 0; w < sizeof(port) / sizeof(port[0]); ++w) port[w] = 0;
  }
}

// 32-bit lane c of an output port.
template <typename P>
int32_t lane32(const P& port, size_t c) {
  if constexpr (std::is_integral_v<P>) {
    return int32_t(uint32_t(uint64_t(port) >> (32 * c)));
  } else {
    return int32_t(port[c]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) fail(2, "usage: fineq_engine JOB RESULT");
  Job j = read_job(argv[1]);
  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(1, argv);
  auto top = std::make_unique<Vfineq_gemm_engine>(ctx.get());
  std::mt19937_64 rng(j.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  auto stalled = [&]() { return j.stall > 0 && uni(rng) < j.stall; };

  top->clk_i = 0;
  top->rst_ni = 0;
  top->start_i = 0;
  top->act_valid_i = 0;
  top->wgt_valid_i = 0;
  top->out_ready_i = 0;
  clear_port(top->act_data_i);
  clear_port(top->wgt_data_i);
  for (int i = 0; i < 4; ++i) {
    top->clk_i = !top->clk_i;
    top->eval();
  }
  top->rst_ni = 1;

  const size_t wbytes = size_t(j.bpv) * 7;
  std::vector<int32_t> y(size_t(j.m) * j.cols, 0);
  size_t ia = 0, iw = 0, io = 0;
  bool act_offer = false, wgt_offer = false;
  uint64_t cyc = 0;
  bool started = false, done = false;
  uint64_t engine_cycles = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (!done) {
    if (cyc >= j.max_cycles) fail(3, "timeout: no done_o within the cycle limit");
    // Inputs of this cycle (changed while the clock is low).
    top->start_i = !started;
    top->cfg_m_i = j.m;
    top->cfg_k_i = j.k;
    if (!act_offer && ia < j.n_act && started && !stalled()) {
      set_port(top->act_data_i, &j.act[ia * j.cols], j.cols);
      act_offer = true;
    }
    if (!wgt_offer && iw < j.n_wgt && started && !stalled()) {
      set_port(top->wgt_data_i, &j.wgt[iw * wbytes], wbytes);
      wgt_offer = true;
    }
    top->act_valid_i = act_offer;
    top->wgt_valid_i = wgt_offer;
    top->out_ready_i = !stalled();
    top->clk_i = 0;
    top->eval();
    // Handshakes as the rising edge will sample them.
    const bool act_fire = act_offer && top->act_ready_o;
    const bool wgt_fire = wgt_offer && top->wgt_ready_o;
    const bool out_fire = top->out_valid_o && top->out_ready_i;
    // done_o is combinational: it marks the finishing cycle, before its edge.
    if (started && top->done_o) done = true;
    if (out_fire) {
      if (io >= j.m) fail(3, "the engine sent more output rows than M");
      for (size_t c = 0; c < j.cols; ++c) y[io * j.cols + c] = lane32(top->out_data_o, c);
      ++io;
    }
    top->clk_i = 1;
    top->eval();
    ++cyc;
    if (done) engine_cycles = top->cycles_o;  // the counter after the finishing cycle
    if (act_fire) { ++ia; act_offer = false; }
    if (wgt_fire) { ++iw; wgt_offer = false; }
    started = true;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ia != j.n_act || iw != j.n_wgt) fail(3, "the engine finished before taking every beat");
  if (io != j.m) fail(3, "the engine finished before sending every output row");
  if (top->cfg_err_o) fail(3, "the engine refused the configuration (cfg_err_o)");
  top->final();

  std::FILE* f = std::fopen(argv[2], "wb");
  if (!f) fail(2, "cannot write the result file");
  const uint32_t hdr[2] = {j.m, j.cols};
  std::fwrite("FQRES001", 1, 8, f);
  std::fwrite(hdr, sizeof(uint32_t), 2, f);
  std::fwrite(&engine_cycles, sizeof(uint64_t), 1, f);
  std::fwrite(&cyc, sizeof(uint64_t), 1, f);
  std::fwrite(&secs, sizeof(double), 1, f);
  std::fwrite(y.data(), sizeof(int32_t), y.size(), f);
  if (std::fclose(f) != 0) fail(2, "cannot write the result file");
  return 0;
}
