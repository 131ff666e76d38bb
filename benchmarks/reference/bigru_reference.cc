// Keras GRU (reset_after=True, gate order z, r, h) recurrences as XLA FFI custom calls for the CPU.
//
// The same arithmetic as jazbat_jax/kernels.py (gru_gates, _gate_grads, _gru_scan_bwd), arranged for a
// CPU: each batch row's recurrence is independent of the others, so the work is cut into units of
// (direction, block of kRowsPerUnit rows) that run on XLA's intra-op thread pool with no
// synchronisation until the end. The block size is fixed (not derived from the number of threads)
// so that the weight gradients are summed in the same order whatever the thread count: results do
// not depend on the machine's core count or on XLA's threading flags.
//
// Layouts (row-major), D directions (1 or 2) of H units over input width F:
//   x         (B, T, F)         batch-major, as the model holds it (no transposes around the call)
//   kernel    (D, F, 3H)        Keras kernel of each direction
//   bias      (D, 2, 3H)        Keras bias: [input bias, recurrent bias]
//   rk        (D, H, 3H)        Keras recurrent_kernel
//   hs        (B, T, D*H)       every state, time-aligned for the reversed direction too (Keras'
//                               Bidirectional concat): the forward's output and the gradient's input
// A direction d runs backwards in time when bit d of `reverse_mask` is set.
//
// The gradient recomputes each step's gates from hs (see backward_unit_impl) rather than having the
// forward save them.
//
// Built by jazbat_jax/native/__init__.py with g++ -O3; every hot function is compiled for several
// instruction sets (target_clones) and the loader picks one when the library is loaded, so the
// shared library runs on any x86-64 and uses AVX-512 or AVX2+FMA where the CPU has them (other
// compilers and architectures get one portable build).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define JAZBAT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define JAZBAT_CLONES
#endif
#define JAZBAT_INLINE inline __attribute__((always_inline))

constexpr int64_t kRowsPerUnit = 16;  // rows of one work unit (see the file comment)
constexpr int64_t kGroup = 4;         // rows stepped through time together: independent work per step

// exp, sigmoid and tanh written without calls or branches so that the compiler vectorises the gate
// loops (libm's expf/tanhf are scalar calls). Cephes' single-precision algorithms: range reduction
// plus a degree-6 polynomial for exp, ~1 ulp; tanh's small-argument polynomial avoids the
// cancellation of 1 - 2 / (exp(2x) + 1) near zero.
JAZBAT_INLINE float exp_f(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);  // keeps 2^n a normal float; NaN passes through
  const float shifter = 12582912.0f;         // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return y * __builtin_bit_cast(float, bits);
}

JAZBAT_INLINE float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

JAZBAT_INLINE float tanh_f(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  const float small =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
       3.33332819422e-1f) * z * x + x;
  const float big = std::copysign(1.0f - 2.0f / (exp_f(2.0f * a) + 1.0f), x);
  return a < 0.625f ? small : big;
}

struct Shape {
  int64_t B, T, F, H, D, reverse_mask;
  bool reversed(int64_t d) const { return (reverse_mask >> d) & 1; }
};


// ---------------------------------------------------------------- small matrix products
// For the common widths (H = 16, 32, 64: 3H a multiple of 16) the per-step matrix products keep their
// accumulators in registers across the whole reduction, a block of rows at a time, so that each row of
// the weight matrix is loaded once per block (a plain loop keeps them in memory: a load and store per
// multiply-add). The vector type is 16 floats; on a CPU without AVX-512 the compiler splits it.

typedef float vf __attribute__((vector_size(64)));
typedef float vf_unaligned __attribute__((vector_size(64), aligned(4), may_alias));
constexpr int kLanes = 16;

JAZBAT_INLINE vf load(const float* p) { return *reinterpret_cast<const vf_unaligned*>(p); }
JAZBAT_INLINE void store(float* p, vf v) { *reinterpret_cast<vf_unaligned*>(p) = v; }

// out[r] = init[r] + a[r] @ M for rows r < R: a[r] has n entries, M is (n, NV * 16). init may be out.
template <int NV, int R>
JAZBAT_INLINE void rows_times_matrix(const float* const* a, int64_t n, const float* __restrict M,
                                     const float* const* init, float* const* out) {
  vf acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = load(init[r] + v * kLanes);
  for (int64_t k = 0; k < n; ++k) {
    vf m[NV];
    for (int v = 0; v < NV; ++v) m[v] = load(M + (k * NV + v) * kLanes);
    for (int r = 0; r < R; ++r) {
      const float ak = a[r][k];
      for (int v = 0; v < NV; ++v) acc[r][v] += ak * m[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) store(out[r] + v * kLanes, acc[r][v]);
}

// The same for any number of rows and M of `width` columns: NV = width / 16 when known at compile
// time, else 0 (plain loops). init may be out.
template <int NV>
JAZBAT_INLINE void block_times_matrix(int64_t rows, const float* const* a, int64_t n, const float* __restrict M,
                                      int64_t width, const float* const* init, float* const* out) {
  if constexpr (NV > 0) {
    constexpr int R = NV <= 6 ? 4 : NV <= 12 ? 2 : 1;  // as many rows as the registers hold
    int64_t r = 0;
    for (; r + R <= rows; r += R) rows_times_matrix<NV, R>(a + r, n, M, init + r, out + r);
    for (; r < rows; ++r) rows_times_matrix<NV, 1>(a + r, n, M, init + r, out + r);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      float* __restrict o = out[r];
      if (o != init[r]) std::copy(init[r], init[r] + width, o);
      for (int64_t k = 0; k < n; ++k) {
        const float ak = a[r][k];
        const float* __restrict Mk = M + k * width;
        for (int64_t j = 0; j < width; ++j) o[j] += ak * Mk[j];
      }
    }
  }
}

// The gate nonlinearities on 16 lanes at once, the same arithmetic as exp_f, sigmoid_f and tanh_f:
// written on vector types because the auto-vectoriser gives up on some of the loops that call them.
typedef int32_t vi __attribute__((vector_size(64)));

JAZBAT_INLINE vf splat(float a) { return vf{} + a; }

JAZBAT_INLINE vf exp_v(vf x) {
  x = x < splat(-87.0f) ? splat(-87.0f) : x;
  x = x > splat(88.0f) ? splat(88.0f) : x;
  const vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf y = p * r * r + r + 1.0f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  return y * reinterpret_cast<const vf&>(bits);
}

JAZBAT_INLINE vf sigmoid_v(vf x) { return 1.0f / (1.0f + exp_v(-x)); }

JAZBAT_INLINE vf tanh_v(vf x) {
  const vi xi = reinterpret_cast<const vi&>(x);
  const vi ai = xi & 0x7fffffff;
  const vf a = reinterpret_cast<const vf&>(ai);
  const vf z = x * x;
  const vf small =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
       3.33332819422e-1f) * z * x + x;
  const vf big_abs = 1.0f - 2.0f / (exp_v(2.0f * a) + 1.0f);
  const vi big_i = reinterpret_cast<const vi&>(big_abs) | (xi & static_cast<int32_t>(0x80000000u));
  const vf big = reinterpret_cast<const vf&>(big_i);
  return a < splat(0.625f) ? small : big;
}

// z, r and n of one row from its projections xp = x @ kernel + bias[0] and rec = h @ rk + bias[1].
template <int NVH>
JAZBAT_INLINE void row_gates(int64_t H, const float* __restrict xp, const float* __restrict rec, float* __restrict z,
                             float* __restrict r, float* __restrict n) {
  if constexpr (NVH > 0) {
    for (int v = 0; v < NVH; ++v) {
      const int64_t j = v * kLanes;
      const vf rr = sigmoid_v(load(xp + H + j) + load(rec + H + j));
      store(z + j, sigmoid_v(load(xp + j) + load(rec + j)));
      store(r + j, rr);
      store(n + j, tanh_v(load(xp + 2 * H + j) + rr * load(rec + 2 * H + j)));
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      const float rr = sigmoid_f(xp[H + j] + rec[H + j]);
      z[j] = sigmoid_f(xp[j] + rec[j]);
      r[j] = rr;
      n[j] = tanh_f(xp[2 * H + j] + rr * rec[2 * H + j]);
    }
  }
}

// One row's step of the gradient, from its gates (z, r, n), rh = rec[2H:], the state before the step hp
// and dh (in: the gradient flowing into the state the step wrote, without this step's output cotangent
// dout; out: dh * z, the part that flows on to the previous state without the recurrent kernel).
// din: gradient of the input projection x @ kernel + bias[0]; drec: of h_prev @ rk + bias[1].
template <int NVH>
JAZBAT_INLINE void row_grads(int64_t H, const float* __restrict z, const float* __restrict r,
                             const float* __restrict n, const float* __restrict rh, const float* __restrict hp,
                             const float* __restrict dout, float* __restrict dh, float* __restrict din,
                             float* __restrict drec) {
  if constexpr (NVH > 0) {
    for (int v = 0; v < NVH; ++v) {
      const int64_t j = v * kLanes;
      const vf zj = load(z + j), rj = load(r + j), nj = load(n + j);
      const vf g = load(dh + j) + load(dout + j);
      const vf dz = g * (load(hp + j) - nj) * zj * (1.0f - zj);  // through the sigmoid
      const vf dn = g * (1.0f - zj) * (1.0f - nj * nj);          // through the tanh
      const vf dr = dn * load(rh + j) * rj * (1.0f - rj);
      store(din + j, dz);
      store(din + H + j, dr);
      store(din + 2 * H + j, dn);
      store(drec + j, dz);
      store(drec + H + j, dr);
      store(drec + 2 * H + j, dn * rj);
      store(dh + j, g * zj);
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      const float g = dh[j] + dout[j];
      const float dz = g * (hp[j] - n[j]) * z[j] * (1.0f - z[j]);
      const float dn = g * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
      const float dr = dn * rh[j] * r[j] * (1.0f - r[j]);
      din[j] = dz;
      din[H + j] = dr;
      din[2 * H + j] = dn;
      drec[j] = dz;
      drec[H + j] = dr;
      drec[2 * H + j] = dn * r[j];
      dh[j] = g * z[j];
    }
  }
}

// a . b over n entries (NV = n / 16 when known at compile time). Summed in 16 partial sums, then a tree:
// a plain loop must add in order (no -ffast-math), one dependent scalar add per entry.
template <int NV>
JAZBAT_INLINE float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  if constexpr (NV > 0) {
    vf acc = load(a) * load(b);
    for (int v = 1; v < NV; ++v) acc += load(a + v * kLanes) * load(b + v * kLanes);
    float lanes[kLanes];
    std::memcpy(lanes, &acc, sizeof(lanes));
    for (int width = kLanes / 2; width >= 1; width /= 2)
      for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
    return lanes[0];
  } else {
    float acc = 0.0f;
    for (int64_t j = 0; j < n; ++j) acc += a[j] * b[j];
    return acc;
  }
}

// ---------------------------------------------------------------- one unit of work
// Rows [b0, b1) of direction d, stepped kGroup rows at a time through time (independent work in each
// step). HC is H when it is known at
// compile time (0: s.H), so that the loops over gates have constant trip counts.

template <int HC>
struct Unit {
  static constexpr int NVG = HC > 0 && (3 * HC) % kLanes == 0 ? 3 * HC / kLanes : 0;
  static constexpr int NVH = NVG > 0 && HC % kLanes == 0 ? HC / kLanes : 0;

  const Shape& s;
  const int64_t d, H, G, T, F, DH;
  const bool rev;
  const float* K;      // (F, 3H) this direction's kernel
  const float* b_in;   // (3H) input bias
  const float* b_rec;  // (3H) recurrent bias
  const float* W;      // (H, 3H) recurrent kernel
  std::vector<float> buf;
  float *xp, *rec, *zeros;
  std::vector<const float*> x_rows, h_rows, in_bias, rec_bias;
  std::vector<float*> xp_rows, rec_rows;

  Unit(const Shape& s_, int64_t d_, const float* kernel, const float* bias, const float* rk)
      : s(s_), d(d_), H(HC ? HC : s_.H), G(3 * H), T(s_.T), F(s_.F), DH(s_.D * H), rev(s_.reversed(d_)),
        K(kernel + d_ * F * G), b_in(bias + d_ * 2 * G), b_rec(b_in + G), W(rk + d_ * H * G),
        buf(kGroup * 2 * G + std::max(F, H), 0.0f), x_rows(kGroup), h_rows(kGroup), in_bias(kGroup, b_in),
        rec_bias(kGroup, b_rec), xp_rows(kGroup), rec_rows(kGroup) {
    xp = buf.data();
    rec = xp + kGroup * G;
    zeros = rec + kGroup * G;  // stands for the rows past the end of a block, and for the initial state
    for (int r = 0; r < kGroup; ++r) {
      xp_rows[r] = xp + r * G;
      rec_rows[r] = rec + r * G;
    }
  }

  // The input and recurrent projections of one step for the block's first `rows` rows (x_rows, h_rows set).
  JAZBAT_INLINE void project(int64_t rows) {
    block_times_matrix<NVG>(rows, x_rows.data(), F, K, G, in_bias.data(), xp_rows.data());
    block_times_matrix<NVG>(rows, h_rows.data(), H, W, G, rec_bias.data(), rec_rows.data());
  }

};

// Forward: hs of rows [b0, b1) of direction d.
template <int HC>
JAZBAT_INLINE void forward_unit_impl(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* __restrict x,
                                     const float* kernel, const float* bias, const float* rk, float* __restrict hs) {
  Unit<HC> u(s, d, kernel, bias, rk);
  const int64_t H = u.H, T = u.T, F = u.F, DH = u.DH;
  std::vector<float> h(kGroup * H), gate_buf(3 * H);
  float* __restrict gz = gate_buf.data();
  float* __restrict gr = gz + H;
  float* __restrict gn = gr + H;
  for (int r = 0; r < kGroup; ++r) u.h_rows[r] = h.data() + r * H;
  for (int64_t g0 = b0; g0 < b1; g0 += kGroup) {
    const int64_t R = std::min(kGroup, b1 - g0);
    std::fill(h.begin(), h.end(), 0.0f);
    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = u.rev ? T - 1 - step : step;
      for (int64_t r = 0; r < kGroup; ++r) u.x_rows[r] = r < R ? x + ((g0 + r) * T + t) * F : u.zeros;
      u.project(R);
      for (int64_t r = 0; r < R; ++r) {
        const float* __restrict xpr = u.xp_rows[r];
        const float* __restrict recr = u.rec_rows[r];
        float* __restrict hr = h.data() + r * H;
        float* __restrict out = hs + ((g0 + r) * T + t) * DH + d * H;
        row_gates<Unit<HC>::NVH>(H, xpr, recr, gz, gr, gn);
        for (int64_t j = 0; j < H; ++j) {
          const float hn = gz[j] * hr[j] + (1.0f - gz[j]) * gn[j];
          hr[j] = hn;
          out[j] = hn;
        }
      }
    }
  }
}

// Gradient of rows [b0, b1) of direction d. Each step's gates are recomputed from the saved states
// (one more projection per step) rather than saved by the forward: at batch 256 writing and reading
// four (B, T, H) gate arrays per direction cost more than recomputing them, and the memory is halved.
// The weight gradients are added to this unit's own sums (d_kernel, d_bias, d_rk).
template <int HC>
JAZBAT_INLINE void backward_unit_impl(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* __restrict x,
                                      const float* kernel, const float* bias, const float* rk,
                                      const float* __restrict rk_t, const float* __restrict hs,
                                      const float* __restrict d_hs, float* __restrict dx, float* __restrict d_kernel,
                                      float* __restrict d_bias, float* __restrict d_rk) {
  Unit<HC> u(s, d, kernel, bias, rk);
  constexpr int NVG = Unit<HC>::NVG, NVH = Unit<HC>::NVH;
  const int64_t H = u.H, G = u.G, T = u.T, F = u.F, DH = u.DH;
  const float* __restrict K = u.K;
  const float* __restrict WT = rk_t + d * G * H;  // (3H, H)
  std::vector<float> buf(kGroup * (H + 2 * G) + H * kGroup, 0.0f);
  float* __restrict dh = buf.data();
  float* __restrict din = dh + kGroup * H;
  float* __restrict drec = din + kGroup * G;
  float* __restrict hp_t = drec + kGroup * G;  // (H, kGroup): the block's previous states, transposed
  std::vector<float> gate_buf(3 * H);
  float* __restrict gz = gate_buf.data();
  float* __restrict gr = gz + H;
  float* __restrict gn = gr + H;
  float* __restrict db_in = d_bias;
  float* __restrict db_rec = d_bias + G;
  std::vector<const float*> dh_rows(kGroup), drec_rows(kGroup), hp_rows(H), dw_rows(H);
  std::vector<float*> dh_out(kGroup), dw_out(H);
  for (int r = 0; r < kGroup; ++r) {
    dh_rows[r] = dh_out[r] = dh + r * H;
    drec_rows[r] = drec + r * G;
  }
  for (int64_t k = 0; k < H; ++k) {
    hp_rows[k] = hp_t + k * kGroup;
    dw_rows[k] = dw_out[k] = d_rk + k * G;
  }

  for (int64_t g0 = b0; g0 < b1; g0 += kGroup) {
    const int64_t R = std::min(kGroup, b1 - g0);
    // Zero rows past the end of a short block add nothing to d_rk (a product over all kGroup rows).
    std::fill(buf.begin(), buf.end(), 0.0f);
    // Backwards through the direction's own order of time.
    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = u.rev ? step : T - 1 - step;
      const bool first = u.rev ? t == T - 1 : t == 0;  // the step that started from the zero state
      const int64_t t_prev = u.rev ? t + 1 : t - 1;
      for (int64_t r = 0; r < kGroup; ++r) {
        u.x_rows[r] = r < R ? x + ((g0 + r) * T + t) * F : u.zeros;
        u.h_rows[r] = r < R && !first ? hs + ((g0 + r) * T + t_prev) * DH + d * H : u.zeros;
      }
      u.project(R);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = g0 + r;
        const float* __restrict xpr = u.xp_rows[r];
        const float* __restrict recr = u.rec_rows[r];
        const float* __restrict hp = u.h_rows[r];
        const float* __restrict dout = d_hs + (b * T + t) * DH + d * H;
        float* __restrict dhr = dh + r * H;
        float* __restrict dinr = din + r * G;
        float* __restrict drecr = drec + r * G;
        row_gates<NVH>(H, xpr, recr, gz, gr, gn);
        row_grads<NVH>(H, gz, gr, gn, recr + 2 * H, hp, dout, dhr, dinr, drecr);
        for (int64_t k = 0; k < H; ++k) hp_t[k * kGroup + r] = hp[k];
        float* __restrict dxt = dx + (b * T + t) * F;
        const float* __restrict xt = u.x_rows[r];
        for (int64_t f = 0; f < F; ++f) {
          const float* __restrict Kf = K + f * G;
          dxt[f] = dot<NVG>(dinr, Kf, G);
          const float xf = xt[f];
          float* __restrict dKf = d_kernel + f * G;
          for (int64_t j = 0; j < G; ++j) dKf[j] += xf * dinr[j];
        }
        for (int64_t j = 0; j < G; ++j) db_in[j] += dinr[j];
        for (int64_t j = 0; j < G; ++j) db_rec[j] += drecr[j];
      }
      // dh_prev += d_rec @ rk.T; d_rk += h_prev.T @ d_rec (nothing at the first step: h_prev = 0)
      block_times_matrix<NVH>(R, drec_rows.data(), G, WT, H, dh_rows.data(), dh_out.data());
      if (!first) block_times_matrix<NVG>(H, hp_rows.data(), kGroup, drec, G, dw_rows.data(), dw_out.data());
    }
  }
}

JAZBAT_CLONES void forward_unit(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* x,
                                const float* kernel, const float* bias, const float* rk, float* hs) {
  switch (s.H) {
    case 16: return forward_unit_impl<16>(s, d, b0, b1, x, kernel, bias, rk, hs);
    case 32: return forward_unit_impl<32>(s, d, b0, b1, x, kernel, bias, rk, hs);
    case 64: return forward_unit_impl<64>(s, d, b0, b1, x, kernel, bias, rk, hs);
    default: return forward_unit_impl<0>(s, d, b0, b1, x, kernel, bias, rk, hs);
  }
}

JAZBAT_CLONES void backward_unit(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* x,
                                 const float* kernel, const float* bias, const float* rk, const float* rk_t,
                                 const float* hs, const float* d_hs, float* dx, float* d_kernel, float* d_bias,
                                 float* d_rk) {
#define JAZBAT_BACKWARD(HC) \
  backward_unit_impl<HC>(s, d, b0, b1, x, kernel, bias, rk, rk_t, hs, d_hs, dx, d_kernel, d_bias, d_rk)
  switch (s.H) {
    case 16: return JAZBAT_BACKWARD(16);
    case 32: return JAZBAT_BACKWARD(32);
    case 64: return JAZBAT_BACKWARD(64);
    default: return JAZBAT_BACKWARD(0);
  }
#undef JAZBAT_BACKWARD
}

// ---------------------------------------------------------------- threads

// Runs fn(0) ... fn(n - 1) on the calling thread and on XLA's intra-op pool. Units are claimed from a
// shared counter, so the caller never waits for a task that has not started: it does every unit no
// pool thread has taken (no deadlock when the pool is busy), then waits only for units in progress.
// Tasks that start after all units are claimed touch nothing but the shared counters.
// row_steps is the call's size (rows x steps x directions): below kMinParallelWork, handing units to other threads costs
// more than it saves (a batch-1 forward of 256 steps is a few tens of microseconds).
constexpr int64_t kMinParallelWork = 8192;

template <typename Fn>
void parallel_units(ffi::ThreadPool& pool, int64_t n, int64_t row_steps, const Fn& fn) {
  const int64_t threads = row_steps < kMinParallelWork ? 1 : pool.num_threads();
  if (threads <= 1 || n <= 1) {
    for (int64_t u = 0; u < n; ++u) fn(u);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    int64_t done = 0;
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  const Fn* body = &fn;
  auto work = [state, body, n]() {
    int64_t finished = 0;
    for (int64_t u; (u = state->next.fetch_add(1)) < n; ++finished) (*body)(u);
    if (finished) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->done += finished;
      state->cv.notify_all();
    }
  };
  for (int64_t i = 0, helpers = std::min(threads, n) - 1; i < helpers; ++i) pool.Schedule(std::function<void()>(work));
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done == n; });
}

// ---------------------------------------------------------------- handlers

ffi::Error check_shapes(const Shape& s, ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& kernel,
                        ffi::Buffer<ffi::F32>& bias, ffi::Buffer<ffi::F32>& rk) {
  auto dims = [](ffi::Buffer<ffi::F32>& b) { return std::vector<int64_t>(b.dimensions().begin(), b.dimensions().end()); };
  const std::vector<int64_t> want_k{s.D, s.F, 3 * s.H}, want_b{s.D, 2, 3 * s.H}, want_rk{s.D, s.H, 3 * s.H};
  if (x.dimensions().size() != 3 || dims(kernel) != want_k || dims(bias) != want_b || dims(rk) != want_rk ||
      s.D < 1 || s.D > 2 || s.H < 1)
    return ffi::Error::InvalidArgument("jazbat GRU: expected x (B, T, F), kernel (D, F, 3H), bias (D, 2, 3H), "
                                       "recurrent kernel (D, H, 3H) with D in {1, 2}");
  return ffi::Error::Success();
}

Shape shape_of(ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& rk, int64_t reverse_mask) {
  const auto xd = x.dimensions();
  const auto rd = rk.dimensions();
  if (xd.size() != 3 || rd.size() != 3) return Shape{0, 0, 0, 0, 0, reverse_mask};
  return Shape{xd[0], xd[1], xd[2], rd[1], rd[0], reverse_mask};
}

int64_t units_per_direction(const Shape& s) { return (s.B + kRowsPerUnit - 1) / kRowsPerUnit; }

ffi::Error ForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                       ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, int64_t reverse_mask,
                       ffi::ResultBuffer<ffi::F32> hs) {
  const Shape s = shape_of(x, rk, reverse_mask);
  if (ffi::Error e = check_shapes(s, x, kernel, bias, rk); e.failure()) return e;
  const int64_t per_dir = units_per_direction(s);
  parallel_units(pool, s.D * per_dir, s.D * s.B * s.T, [&](int64_t u) {
    const int64_t d = u / per_dir, b0 = (u % per_dir) * kRowsPerUnit;
    forward_unit(s, d, b0, std::min(s.B, b0 + kRowsPerUnit), x.typed_data(), kernel.typed_data(),
                 bias.typed_data(), rk.typed_data(), hs->typed_data());
  });
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                        ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, ffi::Buffer<ffi::F32> hs,
                        ffi::Buffer<ffi::F32> d_hs, int64_t reverse_mask, ffi::ResultBuffer<ffi::F32> dx,
                        ffi::ResultBuffer<ffi::F32> d_kernel, ffi::ResultBuffer<ffi::F32> d_bias,
                        ffi::ResultBuffer<ffi::F32> d_rk) {
  const Shape s = shape_of(x, rk, reverse_mask);
  if (ffi::Error e = check_shapes(s, x, kernel, bias, rk); e.failure()) return e;
  const int64_t H = s.H, G = 3 * H, F = s.F, BTF = s.B * s.T * F;
  const int64_t per_dir = units_per_direction(s), n_units = s.D * per_dir;

  std::vector<float> rk_t(s.D * G * H);  // each direction's recurrent kernel transposed, (3H, H)
  const float* w = rk.typed_data();
  for (int64_t d = 0; d < s.D; ++d)
    for (int64_t k = 0; k < H; ++k)
      for (int64_t j = 0; j < G; ++j) rk_t[(d * G + j) * H + k] = w[(d * H + k) * G + j];

  // The second direction's input gradient goes to its own buffer and is added at the end: the two
  // directions of a row may run at the same time.
  std::vector<float> dx_second(s.D > 1 ? BTF : 0);
  const int64_t per_unit = F * G + 2 * G + H * G;
  std::vector<float> sums(n_units * per_unit, 0.0f);

  parallel_units(pool, n_units, s.D * s.B * s.T, [&](int64_t u) {
    const int64_t d = u / per_dir, b0 = (u % per_dir) * kRowsPerUnit;
    float* acc = sums.data() + u * per_unit;
    backward_unit(s, d, b0, std::min(s.B, b0 + kRowsPerUnit), x.typed_data(), kernel.typed_data(),
                  bias.typed_data(), rk.typed_data(), rk_t.data(), hs.typed_data(), d_hs.typed_data(),
                  d == 0 ? dx->typed_data() : dx_second.data(), acc, acc + F * G, acc + F * G + 2 * G);
  });

  float* dxo = dx->typed_data();
  for (int64_t i = 0; i < (s.D > 1 ? BTF : 0); ++i) dxo[i] += dx_second[i];
  float* outs[3] = {d_kernel->typed_data(), d_bias->typed_data(), d_rk->typed_data()};
  const int64_t offsets[3] = {0, F * G, F * G + 2 * G}, sizes[3] = {F * G, 2 * G, H * G};
  for (int p = 0; p < 3; ++p)
    for (int64_t d = 0; d < s.D; ++d) {
      float* out = outs[p] + d * sizes[p];
      std::fill(out, out + sizes[p], 0.0f);
      for (int64_t c = 0; c < per_dir; ++c) {
        const float* acc = sums.data() + (d * per_dir + c) * per_unit + offsets[p];
        for (int64_t i = 0; i < sizes[p]; ++i) out[i] += acc[i];
      }
    }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JazbatGruForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent kernel
                                  .Attr<int64_t>("reverse_mask")
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(JazbatGruBackward, BackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // hs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // cotangent of hs
                                  .Attr<int64_t>("reverse_mask")
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d kernel
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d bias
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d recurrent kernel
);
