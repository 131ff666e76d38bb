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
//                               Bidirectional concat); the state step t wrote
//   gates     (D, B, T, 4H)     what the gradient needs per step: z, r, n and
//                               rh = h_prev @ rk[:, 2H:] + bias[1, 2H:]
// A direction d runs backwards in time when bit d of `reverse_mask` is set.
//
// Built by jazbat_jax/native/__init__.py with g++ -O3; every hot function is compiled for several
// instruction sets (target_clones) and the loader picks one when the library is loaded, so the
// shared library runs on any x86-64 and uses AVX-512 or AVX2+FMA where the CPU has them.

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

// ---------------------------------------------------------------- forward

// One unit: rows [b0, b1) of direction d. HC is H when known at compile time (0: use s.H), so that
// the gate loops have constant trip counts.
template <int HC>
JAZBAT_INLINE void forward_unit_impl(const Shape& s, int64_t d, int64_t b0, int64_t b1,
                                     const float* __restrict x, const float* __restrict kernel,
                                     const float* __restrict bias, const float* __restrict rk,
                                     float* __restrict hs, float* __restrict gates) {
  const int64_t H = HC ? HC : s.H, G = 3 * H, T = s.T, F = s.F, DH = s.D * H;
  const float* __restrict K = kernel + d * F * G;
  const float* __restrict b_in = bias + d * 2 * G;
  const float* __restrict b_rec = b_in + G;
  const float* __restrict W = rk + d * H * G;
  const bool rev = s.reversed(d);
  std::vector<float> buf(kGroup * (H + 2 * G));
  float* __restrict h = buf.data();
  float* __restrict xp = h + kGroup * H;
  float* __restrict rec = xp + kGroup * G;

  for (int64_t g0 = b0; g0 < b1; g0 += kGroup) {
    const int64_t R = std::min(kGroup, b1 - g0);
    std::fill(h, h + kGroup * H, 0.0f);
    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = rev ? T - 1 - step : step;
      for (int64_t r = 0; r < R; ++r) {
        const float* __restrict xt = x + ((g0 + r) * T + t) * F;
        float* __restrict xpr = xp + r * G;
        float* __restrict recr = rec + r * G;
        for (int64_t j = 0; j < G; ++j) xpr[j] = b_in[j];
        for (int64_t j = 0; j < G; ++j) recr[j] = b_rec[j];
        for (int64_t f = 0; f < F; ++f) {
          const float xf = xt[f];
          const float* __restrict Kf = K + f * G;
          for (int64_t j = 0; j < G; ++j) xpr[j] += xf * Kf[j];
        }
        const float* __restrict hr = h + r * H;
        for (int64_t k = 0; k < H; ++k) {
          const float hk = hr[k];
          const float* __restrict Wk = W + k * G;
          for (int64_t j = 0; j < G; ++j) recr[j] += hk * Wk[j];
        }
      }
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = g0 + r;
        const float* __restrict xpr = xp + r * G;
        const float* __restrict recr = rec + r * G;
        float* __restrict hr = h + r * H;
        float* __restrict out = hs + (b * T + t) * DH + d * H;
        if (gates) {
          float* __restrict gt = gates + ((d * s.B + b) * T + t) * 4 * H;
          for (int64_t j = 0; j < H; ++j) {
            const float z = sigmoid_f(xpr[j] + recr[j]);
            const float rr = sigmoid_f(xpr[H + j] + recr[H + j]);
            const float rh = recr[2 * H + j];
            const float n = tanh_f(xpr[2 * H + j] + rr * rh);
            const float hn = z * hr[j] + (1.0f - z) * n;
            hr[j] = hn;
            out[j] = hn;
            gt[j] = z;
            gt[H + j] = rr;
            gt[2 * H + j] = n;
            gt[3 * H + j] = rh;
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            const float z = sigmoid_f(xpr[j] + recr[j]);
            const float rr = sigmoid_f(xpr[H + j] + recr[H + j]);
            const float n = tanh_f(xpr[2 * H + j] + rr * recr[2 * H + j]);
            const float hn = z * hr[j] + (1.0f - z) * n;
            hr[j] = hn;
            out[j] = hn;
          }
        }
      }
    }
  }
}

JAZBAT_CLONES void forward_unit(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* x,
                                const float* kernel, const float* bias, const float* rk, float* hs,
                                float* gates) {
  switch (s.H) {
    case 16: return forward_unit_impl<16>(s, d, b0, b1, x, kernel, bias, rk, hs, gates);
    case 32: return forward_unit_impl<32>(s, d, b0, b1, x, kernel, bias, rk, hs, gates);
    case 64: return forward_unit_impl<64>(s, d, b0, b1, x, kernel, bias, rk, hs, gates);
    default: return forward_unit_impl<0>(s, d, b0, b1, x, kernel, bias, rk, hs, gates);
  }
}

// ---------------------------------------------------------------- backward

struct WeightGrads {  // one unit's sums, added up per direction in unit order at the end
  std::vector<float> kernel, bias, rk;
};

template <int HC>
JAZBAT_INLINE void backward_unit_impl(const Shape& s, int64_t d, int64_t b0, int64_t b1,
                                      const float* __restrict x, const float* __restrict kernel,
                                      const float* __restrict rk_t, const float* __restrict hs,
                                      const float* __restrict gates, const float* __restrict d_hs,
                                      float* __restrict dx, float* __restrict d_kernel,
                                      float* __restrict d_bias, float* __restrict d_rk) {
  const int64_t H = HC ? HC : s.H, G = 3 * H, T = s.T, F = s.F, DH = s.D * H;
  const float* __restrict K = kernel + d * F * G;
  const float* __restrict WT = rk_t + d * G * H;  // (3H, H): rows of rk's transpose
  const bool rev = s.reversed(d);
  std::vector<float> buf(kGroup * (H + 2 * G) + H, 0.0f);
  float* __restrict dh = buf.data();
  float* __restrict din = dh + kGroup * H;
  float* __restrict drec = din + kGroup * G;
  const float* __restrict zeros = drec + kGroup * G;  // the state before the first step
  float* __restrict db_in = d_bias;
  float* __restrict db_rec = d_bias + G;

  for (int64_t g0 = b0; g0 < b1; g0 += kGroup) {
    const int64_t R = std::min(kGroup, b1 - g0);
    std::fill(dh, dh + kGroup * H, 0.0f);
    // Backwards through the direction's own order of time.
    for (int64_t step = 0; step < T; ++step) {
      const int64_t t = rev ? step : T - 1 - step;
      const bool first = rev ? t == T - 1 : t == 0;  // the step that started from the zero state
      const int64_t t_prev = rev ? t + 1 : t - 1;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = g0 + r;
        const float* __restrict gt = gates + ((d * s.B + b) * T + t) * 4 * H;
        const float* __restrict z = gt;
        const float* __restrict rr = gt + H;
        const float* __restrict n = gt + 2 * H;
        const float* __restrict rh = gt + 3 * H;
        const float* __restrict hp = first ? zeros : hs + (b * T + t_prev) * DH + d * H;
        const float* __restrict dout = d_hs + (b * T + t) * DH + d * H;
        float* __restrict dhr = dh + r * H;
        float* __restrict dinr = din + r * G;
        float* __restrict drecr = drec + r * G;
        for (int64_t j = 0; j < H; ++j) {
          const float g = dhr[j] + dout[j];
          const float dz = g * (hp[j] - n[j]) * z[j] * (1.0f - z[j]);  // through the sigmoid
          const float dn = g * (1.0f - z[j]) * (1.0f - n[j] * n[j]);  // through the tanh
          const float dr = dn * rh[j] * rr[j] * (1.0f - rr[j]);
          dinr[j] = dz;
          dinr[H + j] = dr;
          dinr[2 * H + j] = dn;
          drecr[j] = dz;
          drecr[H + j] = dr;
          drecr[2 * H + j] = dn * rr[j];
          dhr[j] = g * z[j];
        }
        for (int64_t j = 0; j < G; ++j) {  // dh_prev += d_rec @ rk.T
          const float c = drecr[j];
          const float* __restrict WTj = WT + j * H;
          for (int64_t k = 0; k < H; ++k) dhr[k] += c * WTj[k];
        }
        float* __restrict dxt = dx + (b * T + t) * F;
        const float* __restrict xt = x + (b * T + t) * F;
        for (int64_t f = 0; f < F; ++f) {
          const float* __restrict Kf = K + f * G;
          float acc = 0.0f;
          for (int64_t j = 0; j < G; ++j) acc += dinr[j] * Kf[j];
          dxt[f] = acc;
          const float xf = xt[f];
          float* __restrict dKf = d_kernel + f * G;
          for (int64_t j = 0; j < G; ++j) dKf[j] += xf * dinr[j];
        }
        for (int64_t j = 0; j < G; ++j) db_in[j] += dinr[j];
        for (int64_t j = 0; j < G; ++j) db_rec[j] += drecr[j];
        if (!first) {
          for (int64_t k = 0; k < H; ++k) {
            const float hk = hp[k];
            float* __restrict dWk = d_rk + k * G;
            for (int64_t j = 0; j < G; ++j) dWk[j] += hk * drecr[j];
          }
        }
      }
    }
  }
}

JAZBAT_CLONES void backward_unit(const Shape& s, int64_t d, int64_t b0, int64_t b1, const float* x,
                                 const float* kernel, const float* rk_t, const float* hs, const float* gates,
                                 const float* d_hs, float* dx, float* d_kernel, float* d_bias, float* d_rk) {
  switch (s.H) {
    case 16: return backward_unit_impl<16>(s, d, b0, b1, x, kernel, rk_t, hs, gates, d_hs, dx, d_kernel, d_bias, d_rk);
    case 32: return backward_unit_impl<32>(s, d, b0, b1, x, kernel, rk_t, hs, gates, d_hs, dx, d_kernel, d_bias, d_rk);
    case 64: return backward_unit_impl<64>(s, d, b0, b1, x, kernel, rk_t, hs, gates, d_hs, dx, d_kernel, d_bias, d_rk);
    default: return backward_unit_impl<0>(s, d, b0, b1, x, kernel, rk_t, hs, gates, d_hs, dx, d_kernel, d_bias, d_rk);
  }
}

// ---------------------------------------------------------------- threads

// Runs fn(0) ... fn(n - 1) on the calling thread and on XLA's intra-op pool. Units are claimed from a
// shared counter, so the caller never waits for a task that has not started: it does every unit no
// pool thread has taken (no deadlock when the pool is busy), then waits only for units in progress.
// Tasks that start after all units are claimed touch nothing but the shared counters.
template <typename Fn>
void parallel_units(ffi::ThreadPool& pool, int64_t n, const Fn& fn) {
  const int64_t threads = pool.num_threads();
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

ffi::Error forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                   ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, int64_t reverse_mask, float* hs,
                   float* gates) {
  const Shape s = shape_of(x, rk, reverse_mask);
  if (ffi::Error e = check_shapes(s, x, kernel, bias, rk); e.failure()) return e;
  const int64_t per_dir = units_per_direction(s);
  parallel_units(pool, s.D * per_dir, [&](int64_t u) {
    const int64_t d = u / per_dir, b0 = (u % per_dir) * kRowsPerUnit;
    forward_unit(s, d, b0, std::min(s.B, b0 + kRowsPerUnit), x.typed_data(), kernel.typed_data(),
                 bias.typed_data(), rk.typed_data(), hs, gates);
  });
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                       ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, int64_t reverse_mask,
                       ffi::ResultBuffer<ffi::F32> hs, ffi::ResultBuffer<ffi::F32> gates) {
  return forward(pool, x, kernel, bias, rk, reverse_mask, hs->typed_data(), gates->typed_data());
}

ffi::Error InferImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                     ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, int64_t reverse_mask,
                     ffi::ResultBuffer<ffi::F32> hs) {
  return forward(pool, x, kernel, bias, rk, reverse_mask, hs->typed_data(), nullptr);
}

ffi::Error BackwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                        ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> rk, ffi::Buffer<ffi::F32> hs,
                        ffi::Buffer<ffi::F32> gates, ffi::Buffer<ffi::F32> d_hs, int64_t reverse_mask,
                        ffi::ResultBuffer<ffi::F32> dx, ffi::ResultBuffer<ffi::F32> d_kernel,
                        ffi::ResultBuffer<ffi::F32> d_bias, ffi::ResultBuffer<ffi::F32> d_rk) {
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

  parallel_units(pool, n_units, [&](int64_t u) {
    const int64_t d = u / per_dir, b0 = (u % per_dir) * kRowsPerUnit;
    float* acc = sums.data() + u * per_unit;
    backward_unit(s, d, b0, std::min(s.B, b0 + kRowsPerUnit), x.typed_data(), kernel.typed_data(), rk_t.data(),
                  hs.typed_data(), gates.typed_data(), d_hs.typed_data(), d == 0 ? dx->typed_data() : dx_second.data(),
                  acc, acc + F * G, acc + F * G + 2 * G);
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
                                  .Ret<ffi::Buffer<ffi::F32>>()  // gates
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(JazbatGruInfer, InferImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("reverse_mask")
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(JazbatGruBackward, BackwardImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias (unused: shapes only)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // hs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // gates
                                  .Arg<ffi::Buffer<ffi::F32>>()  // cotangent of hs
                                  .Attr<int64_t>("reverse_mask")
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d kernel
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d bias
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d recurrent kernel
);
