// Causal Taylor linear attention prefill (Based; JRT-RNN's prefix form when an encoder is given)
// for d = 16, in CUDA C++ with mma.sync tensor-core instructions. Built and loaded by
// taylor_cuda.py; design, predictions and measurements in NOTES.md ("v4").
//
// One CTA (8 warps) per (batch*head, 64-column value slice) walks the sequence in 64-token
// chunks. The fp32 state sum phi(k)^T v (256 second-order + 16 first-order rows x 64 columns) is
// split across the warps as mma accumulators: warp w owns second-order blocks 2w and 2w+1 and
// first-order column tile w, so no warp's update chain is longer than 68 mma per chunk. After its
// update each warp writes a bf16 copy of its rows into a double-buffered shared-memory state,
// which is what the next chunk's readout multiplies by; the readout of chunk t (reading buffer t%2)
// and the update of chunk t (writing buffer 1 - t%2) are independent, so they interleave within a
// warp and across the 16 warps two CTAs put on an SM. q/k/v chunks are double-buffered with
// cp.async: chunk t+1 loads while chunk t computes. One __syncthreads per chunk.
//
// Numerics follow the Triton kernel: q and k scaled by d^(-1/4) = 1/2 (exact in bf16), every
// second-order product rounded to bf16 once, fp32 accumulation, the readout state rounded to
// bf16. Powers of two commute with rounding, so raw q/k products are used and the scales folded
// into the state copy (1/32 for second order, 1/4 for first order) and the denominator state.

#include <cuda_bf16.h>
#include <stdint.h>

namespace {

constexpr int CHUNK = 64;
constexpr int DK = 16;
constexpr int DVS = 64;  // value columns per CTA
constexpr int WARPS = 8;
constexpr int THREADS = WARPS * 32;
constexpr int QK_STRIDE = 24;  // bf16 per q/k row in shared memory: 48 B rows, ldmatrix without bank conflicts
constexpr int V_STRIDE = 72;   // bf16 per v / state row: 144 B rows, likewise
constexpr int FEATURES = DK * DK + DK;  // 272 state rows; the 0th order (sum v, a count) is kept apart

struct Smem {
  __nv_bfloat16 state[2][FEATURES * V_STRIDE];
  __nv_bfloat16 q[2][CHUNK * QK_STRIDE];
  __nv_bfloat16 k[2][CHUNK * QK_STRIDE];
  __nv_bfloat16 v[2][CHUNK * V_STRIDE];
  // sum k k^T / 32 (raw k), the second-order denominator state, as a bf16 pair hi + lo (~16
  // mantissa bits) so that the readout's Z q runs on the tensor cores.
  __nv_bfloat16 zk_hi[2][DK * QK_STRIDE];
  __nv_bfloat16 zk_lo[2][DK * QK_STRIDE];
  float z1[2][DK];       // sum k / 4
  float s0[2][DVS];      // sum v
  // Running totals of the small sums, kept here rather than in registers (the register budget
  // of two CTAs per SM): raw sum k k^T as warps 0-1's accumulator fragments, sum k, sum v.
  float zk_run[2][32][4];
  float z1_run[DK];
  float s0_run[DVS];
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

__device__ __forceinline__ float2 unpack(uint32_t x) {
  __nv_bfloat162 h = *reinterpret_cast<__nv_bfloat162*>(&x);
  return __bfloat1622float2(h);
}

// The 8 values of an mma operand fragment as floats, in fragment order.
__device__ __forceinline__ void unpack_fragment(const uint32_t (&x)[4], float (&f)[8]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const float2 p = unpack(x[r]);
    f[2 * r] = p.x;
    f[2 * r + 1] = p.y;
  }
}

__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Copies one chunk (rows [0, rows) valid, the rest zero-filled) into buffer `buf`. q is null for
// encoder chunks. 768 16-byte pieces: 128 of q, 128 of k, 512 of the v slice.
__device__ __forceinline__ void load_chunk(Smem& s, int buf, const __nv_bfloat16* q,
                                           const __nv_bfloat16* k, const __nv_bfloat16* v,
                                           int rows, int v_stride, int tid) {
#pragma unroll
  for (int p = tid; p < 768; p += THREADS) {
    if (p < 256) {
      const bool is_q = p < 128;
      const int row = (p & 127) >> 1, half = p & 1;
      const __nv_bfloat16* base = is_q ? q : k;
      if (base == nullptr) continue;
      const bool ok = row < rows;
      __nv_bfloat16* dst = (is_q ? s.q[buf] : s.k[buf]) + row * QK_STRIDE + half * 8;
      cp_async16(smem_addr(dst), ok ? base + row * DK + half * 8 : base, ok ? 16 : 0);
    } else {
      const int pp = p - 256, row = pp >> 3, piece = pp & 7;
      const bool ok = row < rows;
      cp_async16(smem_addr(s.v[buf] + row * V_STRIDE + piece * 8),
                 ok ? v + static_cast<int64_t>(row) * v_stride + piece * 8 : v, ok ? 16 : 0);
    }
  }
}

// CTAS_PER_SM: the occupancy the register budget is fitted to (2: 128 registers a thread, a
// few spills; 1: no cap). Both are built; the host picks (NOTES.md v4 has the measurements).
template <int CTAS_PER_SM>
__global__ void __launch_bounds__(THREADS, CTAS_PER_SM)
taylor_prefill_kernel(const __nv_bfloat16* __restrict__ Q, const __nv_bfloat16* __restrict__ K,
                      const __nv_bfloat16* __restrict__ V, __nv_bfloat16* __restrict__ Y,
                      const __nv_bfloat16* __restrict__ KE, const __nv_bfloat16* __restrict__ VE,
                      int n, int m, int dv) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int col0 = blockIdx.x * DVS;
  const int64_t bh = blockIdx.y;
  const __nv_bfloat16* q_base = Q + bh * n * DK;
  const __nv_bfloat16* k_base = K + bh * n * DK;
  const __nv_bfloat16* v_base = V + bh * n * dv + col0;
  __nv_bfloat16* y_base = Y + bh * n * dv + col0;
  const __nv_bfloat16* ke_base = KE ? KE + bh * m * DK : nullptr;
  const __nv_bfloat16* ve_base = VE ? VE + bh * m * dv + col0 : nullptr;
  const int enc_chunks = ke_base ? (m + CHUNK - 1) / CHUNK : 0;
  const int total = enc_chunks + (n + CHUNK - 1) / CHUNK;

  auto issue = [&](int c, int buf) {
    if (c < enc_chunks) {
      const int start = c * CHUNK;
      load_chunk(s, buf, nullptr, ke_base + start * DK, ve_base + static_cast<int64_t>(start) * dv,
                 min(CHUNK, m - start), dv, tid);
    } else {
      const int start = (c - enc_chunks) * CHUNK;
      load_chunk(s, buf, q_base + start * DK, k_base + start * DK,
                 v_base + static_cast<int64_t>(start) * dv, min(CHUNK, n - start), dv, tid);
    }
  };
  issue(0, 0);
  cp_async_commit();
  {
    uint32_t* st = reinterpret_cast<uint32_t*>(s.state[0]);
    for (int i = tid; i < FEATURES * V_STRIDE / 2; i += THREADS) st[i] = 0u;
    for (int i = tid; i < DK * QK_STRIDE; i += THREADS) {
      s.zk_hi[0][i] = __float2bfloat16(0.f);
      s.zk_lo[0][i] = __float2bfloat16(0.f);
    }
    if (tid < DK) s.z1[0][tid] = 0.f;
    if (tid < DVS) s.s0[0][tid] = s.s0_run[tid] = 0.f;
    if (tid < DK) s.z1_run[tid] = 0.f;
    if (tid < 256) reinterpret_cast<float*>(s.zk_run)[tid] = 0.f;
  }

  // This warp's share of the running state (fp32 mma accumulators).
  float acc2[2][8][4] = {};  // second-order blocks 2w, 2w+1: rows k_i k_j (i = block), 64 columns
  float acc1[4] = {};        // first-order rows, column tile w

  const int mi = warp >> 1, ch = warp & 1;  // readout tile: rows 16 mi, columns 32 ch
  const int r0 = mi * 16;
  const int lrow = lane & 7, lmat = lane >> 3;

  for (int c = 0; c < total; ++c) {
    const int buf = c & 1;
    cp_async_wait_all();
    __syncthreads();
    if (c + 1 < total) issue(c + 1, buf ^ 1);
    cp_async_commit();
    const __nv_bfloat16* sq = s.q[buf];
    const __nv_bfloat16* sk = s.k[buf];
    const __nv_bfloat16* sv = s.v[buf];

    if (c >= enc_chunks) {
      // ---- readout of chunk c: rows r0..r0+15, columns 32 ch..32 ch+31 ----
      const int start = (c - enc_chunks) * CHUNK;
      const int rows = min(CHUNK, n - start);
      uint32_t qa[4];
      ldsm_x4(smem_addr(sq + (r0 + (lmat & 1) * 8 + lrow) * QK_STRIDE + (lmat >> 1) * 8), qa);
      float num[4][4] = {};
      float den_lo = 0.f, den_hi = 0.f;
      // num += a (16 x 16) times rows row0..row0+15 of a [., V_STRIDE] bf16 tile (v or the
      // state copy), this warp's 32 columns.
      auto mma_rows = [&](const __nv_bfloat16* tile, int row0, const uint32_t (&a)[4]) {
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          uint32_t b[4];
          ldsm_x4_t(smem_addr(tile + (row0 + (lmat & 1) * 8 + lrow) * V_STRIDE + ch * 32 + np * 16 +
                              (lmat >> 1) * 8),
                    b);
          mma(num[2 * np], a, b[0], b[1]);
          mma(num[2 * np + 1], a, b[2], b[3]);
        }
      };
      // Intra-chunk: a = 1 + s + s^2/2 on s = q.k/4 (the scaled q.k), causal; key tiles past
      // this warp's rows are all masked and skipped.
#pragma unroll 1
      for (int jp = 0; jp <= mi; ++jp) {
        uint32_t kb[4];
        ldsm_x4(smem_addr(sk + (jp * 16 + (lmat >> 1) * 8 + lrow) * QK_STRIDE + (lmat & 1) * 8), kb);
        float sc[2][4] = {};
        mma(sc[0], qa, kb[0], kb[1]);
        mma(sc[1], qa, kb[2], kb[3]);
        uint32_t a[4];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = r0 + g + (e >> 1) * 8;
            const int key = jp * 16 + h * 8 + 2 * t + (e & 1);
            const float x = 0.25f * sc[h][e];
            const float w = key <= row ? 1.f + x + 0.5f * x * x : 0.f;
            sc[h][e] = w;
            if (e < 2) den_lo += w; else den_hi += w;
          }
          a[2 * h] = pack(sc[h][0], sc[h][1]);
          a[2 * h + 1] = pack(sc[h][2], sc[h][3]);
        }
        mma_rows(sv, jp * 16, a);
      }
      // Inter-chunk: phi(q) times the state before this chunk (bf16 copy in buffer `buf`).
      const __nv_bfloat16* st = s.state[buf];
      float qf[8];
      unpack_fragment(qa, qf);
      const __nv_bfloat16* q_lo = sq + (r0 + g) * QK_STRIDE;
      const __nv_bfloat16* q_hi = sq + (r0 + g + 8) * QK_STRIDE;
#pragma unroll 2
      for (int i = 0; i < DK; ++i) {
        // Block i of phi(q): q_i times the q fragment, rounded to bf16 once.
        const float sa = __bfloat162float(q_lo[i]), sb = __bfloat162float(q_hi[i]);
        const uint32_t a[4] = {pack(sa * qf[0], sa * qf[1]), pack(sb * qf[2], sb * qf[3]),
                               pack(sa * qf[4], sa * qf[5]), pack(sb * qf[6], sb * qf[7])};
        mma_rows(st, i * 16, a);
      }
      mma_rows(st, DK * 16, qa);  // first order: q itself
      // Denominator: count + q.(z1 + Z q) per row, scales folded into z1 and Z. Z q as two mma
      // (hi and lo halves of Z, which is symmetric, so its rows serve as the B operand).
      {
        float xz[2][4] = {};
        const int zoff = ((lmat & 1) * 8 + lrow) * QK_STRIDE + (lmat >> 1) * 8;
        uint32_t zb[4];
        ldsm_x4_t(smem_addr(s.zk_hi[buf] + zoff), zb);
        mma(xz[0], qa, zb[0], zb[1]);
        mma(xz[1], qa, zb[2], zb[3]);
        ldsm_x4_t(smem_addr(s.zk_lo[buf] + zoff), zb);
        mma(xz[0], qa, zb[0], zb[1]);
        mma(xz[1], qa, zb[2], zb[3]);
        const float* z1 = s.z1[buf];
        const float2 za = *reinterpret_cast<const float2*>(z1 + 2 * t);
        const float2 zc = *reinterpret_cast<const float2*>(z1 + 2 * t + 8);
        const float part_lo = qf[0] * (za.x + xz[0][0]) + qf[1] * (za.y + xz[0][1]) +
                              qf[4] * (zc.x + xz[1][0]) + qf[5] * (zc.y + xz[1][1]);
        const float part_hi = qf[2] * (za.x + xz[0][2]) + qf[3] * (za.y + xz[0][3]) +
                              qf[6] * (zc.x + xz[1][2]) + qf[7] * (zc.y + xz[1][3]);
        const float count = static_cast<float>(m + start);
        den_lo = quad_sum(den_lo + part_lo) + count;
        den_hi = quad_sum(den_hi + part_hi) + count;
      }
      const float inv_lo = 1.f / den_lo, inv_hi = 1.f / den_hi;
      const int row_lo = r0 + g, row_hi = r0 + g + 8;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int col = ch * 32 + nt * 8 + 2 * t;
        const float s0a = s.s0[buf][col], s0b = s.s0[buf][col + 1];
        if (row_lo < rows)
          *reinterpret_cast<uint32_t*>(y_base + static_cast<int64_t>(start + row_lo) * dv + col) =
              pack((num[nt][0] + s0a) * inv_lo, (num[nt][1] + s0b) * inv_lo);
        if (row_hi < rows)
          *reinterpret_cast<uint32_t*>(y_base + static_cast<int64_t>(start + row_hi) * dv + col) =
              pack((num[nt][2] + s0a) * inv_hi, (num[nt][3] + s0b) * inv_hi);
      }
    }

    if (c + 1 == total) break;  // nothing reads the state after the last chunk
    // ---- update with chunk c: this warp's state rows ----
    float s0_part = 0.f, z1_lo = 0.f, z1_hi = 0.f;
    float acc_z[4] = {};  // this chunk's sum k k^T, column tile w (warps 0 and 1)
#pragma unroll 1
    for (int kk = 0; kk < CHUNK / 16; ++kk) {
      uint32_t kt[4];  // A fragment of k^T (rows: feature j, columns: tokens 16 kk..)
      ldsm_x4_t(smem_addr(sk + (kk * 16 + (lmat >> 1) * 8 + lrow) * QK_STRIDE + (lmat & 1) * 8), kt);
      float kf[8];
      unpack_fragment(kt, kf);
      const int tok = kk * 16 + 2 * t;
      // k_i of the 4 tokens this lane's fragment covers, times 1/32 (the second-order state's
      // scale, exact in bf16, so the accumulators hold what the readout copy needs).
      auto scale_of = [&](int token) {
        const float2 f = unpack(*reinterpret_cast<const uint32_t*>(sk + token * QK_STRIDE + 2 * warp));
        return make_float2(f.x * 0.03125f, f.y * 0.03125f);
      };
      const float2 c0 = scale_of(tok), c1 = scale_of(tok + 1), c8 = scale_of(tok + 8), c9 = scale_of(tok + 9);
      uint32_t a0[4], a1[4];  // blocks 2w (scale k_{2w}) and 2w+1 (k_{2w+1}) of phi(k)^T
      a0[0] = pack(kf[0] * c0.x, kf[1] * c1.x);
      a0[1] = pack(kf[2] * c0.x, kf[3] * c1.x);
      a0[2] = pack(kf[4] * c8.x, kf[5] * c9.x);
      a0[3] = pack(kf[6] * c8.x, kf[7] * c9.x);
      a1[0] = pack(kf[0] * c0.y, kf[1] * c1.y);
      a1[1] = pack(kf[2] * c0.y, kf[3] * c1.y);
      a1[2] = pack(kf[4] * c8.y, kf[5] * c9.y);
      a1[3] = pack(kf[6] * c8.y, kf[7] * c9.y);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t vb[4];
        ldsm_x4_t(smem_addr(sv + (kk * 16 + (lmat & 1) * 8 + lrow) * V_STRIDE + np * 16 + (lmat >> 1) * 8),
                  vb);
        mma(acc2[0][2 * np], a0, vb[0], vb[1]);
        mma(acc2[0][2 * np + 1], a0, vb[2], vb[3]);
        mma(acc2[1][2 * np], a1, vb[0], vb[1]);
        mma(acc2[1][2 * np + 1], a1, vb[2], vb[3]);
        if (np == (warp >> 1)) {
          const uint32_t b0 = (warp & 1) ? vb[2] : vb[0];
          const uint32_t b1 = (warp & 1) ? vb[3] : vb[1];
          mma(acc1, kt, b0, b1);
          const float2 x = unpack(b0), y = unpack(b1);
          s0_part += x.x + x.y + y.x + y.y;
        }
      }
      if (warp < 2) {
        uint32_t kb[4];  // k as B operand (rows: tokens, columns: features 8w..8w+7)
        ldsm_x4_t(smem_addr(sk + (kk * 16 + (lmat & 1) * 8 + lrow) * QK_STRIDE + warp * 8), kb);
        mma(acc_z, kt, kb[0], kb[1]);
      } else if (warp == 2) {
        z1_lo += kf[0] + kf[1] + kf[4] + kf[5];
        z1_hi += kf[2] + kf[3] + kf[6] + kf[7];
      }
    }
    s0_part = quad_sum(s0_part);
    float s0 = 0.f;  // running sum v of column 8w + g (lane t == 0)
    if (t == 0) s.s0_run[warp * 8 + g] = s0 = s.s0_run[warp * 8 + g] + s0_part;
    if (warp < 2) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_z[e] = s.zk_run[warp][lane][e] += acc_z[e];
    } else if (warp == 2) {
      z1_lo = quad_sum(z1_lo);
      z1_hi = quad_sum(z1_hi);
      if (t == 0) {
        z1_lo = s.z1_run[g] += z1_lo;
        z1_hi = s.z1_run[g + 8] += z1_hi;
      }
    }

    if (c + 1 < enc_chunks) continue;  // the next chunk only updates: no readout copy needed
    // ---- publish the state after chunk c into buffer buf ^ 1 ----
    __nv_bfloat16* out = s.state[buf ^ 1];
#pragma unroll
    for (int b = 0; b < 2; ++b) {
      const int row = (2 * warp + b) * 16 + g;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int col = nt * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(out + row * V_STRIDE + col) =
            pack(acc2[b][nt][0], acc2[b][nt][1]);
        *reinterpret_cast<uint32_t*>(out + (row + 8) * V_STRIDE + col) =
            pack(acc2[b][nt][2], acc2[b][nt][3]);
      }
    }
    {
      const int row = DK * DK + g, col = warp * 8 + 2 * t;
      *reinterpret_cast<uint32_t*>(out + row * V_STRIDE + col) = pack(acc1[0] * 0.25f, acc1[1] * 0.25f);
      *reinterpret_cast<uint32_t*>(out + (row + 8) * V_STRIDE + col) = pack(acc1[2] * 0.25f, acc1[3] * 0.25f);
    }
    if (warp < 2) {
      const int col = warp * 8 + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float x0 = acc_z[2 * h] * 0.03125f, x1 = acc_z[2 * h + 1] * 0.03125f;
        const __nv_bfloat162 hi = __floats2bfloat162_rn(x0, x1);
        const float2 back = __bfloat1622float2(hi);
        const int at = (g + 8 * h) * QK_STRIDE + col;
        *reinterpret_cast<__nv_bfloat162*>(s.zk_hi[buf ^ 1] + at) = hi;
        *reinterpret_cast<__nv_bfloat162*>(s.zk_lo[buf ^ 1] + at) =
            __floats2bfloat162_rn(x0 - back.x, x1 - back.y);
      }
    } else if (warp == 2) {
      if (t == 0) {
        s.z1[buf ^ 1][g] = z1_lo * 0.25f;
        s.z1[buf ^ 1][g + 8] = z1_hi * 0.25f;
      }
    }
    if (t == 0) s.s0[buf ^ 1][warp * 8 + g] = s0;
  }
}

}  // namespace

extern "C" {

// Bytes of dynamic shared memory one CTA takes; the host sets the kernel's limit to it.
int taylor_prefill_smem_bytes() { return static_cast<int>(sizeof(Smem)); }

// Launches on `stream` (a cudaStream_t as an integer). q, k: [BH, n, 16]; v, y: [BH, n, dv];
// ke [BH, m, 16], ve [BH, m, dv] or both null (m = 0). dv a multiple of 64. ctas_per_sm picks
// the build variant (1 or 2). Returns a cudaError_t.
int taylor_prefill(const void* q, const void* k, const void* v, void* y, const void* ke,
                   const void* ve, int bh, int n, int m, int dv, int ctas_per_sm, uintptr_t stream) {
  if (bh <= 0 || n <= 0 || m < 0 || dv <= 0 || dv % DVS != 0 || (m > 0) != (ke != nullptr) ||
      (ke == nullptr) != (ve == nullptr) || (ctas_per_sm != 1 && ctas_per_sm != 2))
    return static_cast<int>(cudaErrorInvalidValue);
  const int smem = static_cast<int>(sizeof(Smem));
  auto kernel = ctas_per_sm == 2 ? taylor_prefill_kernel<2> : taylor_prefill_kernel<1>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (err != cudaSuccess) return static_cast<int>(err);
  const dim3 grid(dv / DVS, bh);
  kernel<<<grid, THREADS, smem, reinterpret_cast<cudaStream_t>(stream)>>>(
      static_cast<const __nv_bfloat16*>(q), static_cast<const __nv_bfloat16*>(k),
      static_cast<const __nv_bfloat16*>(v), static_cast<__nv_bfloat16*>(y),
      static_cast<const __nv_bfloat16*>(ke), static_cast<const __nv_bfloat16*>(ve), n, m, dv);
  return static_cast<int>(cudaGetLastError());
}
}
