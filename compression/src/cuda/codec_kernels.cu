// The codec's CUDA kernels, compiled at run time by NVRTC (src/cuda_kernels.rs).
//
// ef_update: error feedback and chunking in one pass over a parameter.
// chunk_topk: top-k of every chunk: the k largest values of each row of a (rows, n) f32 matrix
// of magnitudes, as their column indices in increasing order (ties go to the lower index).
// One block of 256 threads per row; thread t owns the consecutive columns
// [t·per, (t+1)·per), per = ceil(n / 256) ≤ 16, so that n ≤ 4096.
//
// Exact radix select on the values' bit patterns (non-negative floats order like their bits):
// four 8-bit passes (a histogram, then a block-wide scan over its bins) find the k-th largest
// value T and how many of the values equal to T are needed; a block-wide scan then writes every
// selected column in order.

// e ← decay·e + d rounded twice, as torch's `e.mul_(decay).add_(d)` (no fused multiply-add),
// and |e| written to the chunk buffer: element (r, c) of the (chunk_rows·h, chunk_cols·w)
// parameter belongs to chunk (r / h)·chunk_cols + c / w of the member (its rows start at
// `first_chunk`), at position (r % h)·w + c % w of that chunk's row of h·w values.
extern "C" __global__ void ef_update(float* __restrict__ e, const float* __restrict__ d,
                                     float* __restrict__ magnitude, long long rows, unsigned int cols,
                                     unsigned int h, unsigned int w, long long first_chunk, float decay) {
    const unsigned int chunk_cols = cols / w;
    // A block per row (striding over rows), its threads along the row: the divisions below are
    // 32-bit, and only once per row for the row's chunk coordinates.
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long base = r * cols;
        const long long chunk_row = first_chunk + (r / h) * chunk_cols;
        const unsigned int within = (unsigned int)(r % h) * w;
        for (unsigned int c = threadIdx.x; c < cols; c += blockDim.x) {
            const float v = __fadd_rn(__fmul_rn(e[base + c], decay), d[base + c]);
            e[base + c] = v;
            magnitude[(chunk_row + c / w) * (long long)(h * w) + within + c % w] = fabsf(v);
        }
    }
}

#define THREADS 256
#define MAX_PER 16

__device__ __forceinline__ int block_exclusive_scan(int value, int* scratch, int* total) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int inclusive = value;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        int n = __shfl_up_sync(0xffffffffu, inclusive, d);
        if (lane >= d) inclusive += n;
    }
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        int w = lane < THREADS / 32 ? scratch[lane] : 0;
#pragma unroll
        for (int d = 1; d < 32; d <<= 1) {
            int n = __shfl_up_sync(0xffffffffu, w, d);
            if (lane >= d) w += n;
        }
        if (lane < THREADS / 32) scratch[lane] = w;
    }
    __syncthreads();
    const int before = (warp > 0 ? scratch[warp - 1] : 0) + inclusive - value;
    *total = scratch[THREADS / 32 - 1];
    __syncthreads();
    return before;
}

extern "C" __global__ void __launch_bounds__(THREADS)
chunk_topk(const float* __restrict__ magnitude, long long* __restrict__ out, int n, int k) {
    __shared__ unsigned int hist[256];
    __shared__ int scratch[THREADS / 32];
    __shared__ unsigned int chosen_digit;
    __shared__ int still_needed;

    const int tid = threadIdx.x;
    const int per = (n + THREADS - 1) / THREADS;
    const int first = tid * per;
    const float* row = magnitude + (long long)blockIdx.x * n;
    long long* row_out = out + (long long)blockIdx.x * k;

    unsigned int key[MAX_PER];
#pragma unroll
    for (int j = 0; j < MAX_PER; ++j) {
        const int i = first + j;
        key[j] = (j < per && i < n) ? __float_as_uint(row[i]) : 0u;
    }

    unsigned int prefix = 0, mask = 0;
    int needed = k;  // rank of the wanted value among those matching `prefix`, from the top
    for (int shift = 24; shift >= 0; shift -= 8) {
        hist[tid] = 0;
        __syncthreads();
#pragma unroll
        for (int j = 0; j < MAX_PER; ++j) {
            const int i = first + j;
            const bool counts = j < per && i < n && (key[j] & mask) == prefix;
            const unsigned int digit = (key[j] >> shift) & 255u;
            // Values of one chunk share their leading bits, so most lanes hit the same bin: one
            // atomic per distinct digit in the warp instead of one per lane.
            const unsigned int voters = __ballot_sync(0xffffffffu, counts);
            if (counts) {
                const unsigned int same = __match_any_sync(voters, digit);
                if ((threadIdx.x & 31) == __ffs(same) - 1) atomicAdd(&hist[digit], (unsigned int)__popc(same));
            }
        }
        __syncthreads();
        // Thread t looks at bin 255 − t: the values above it are those in the bins before it in
        // that order; the one bin where the running count reaches `needed` holds the value.
        const unsigned int bin = 255u - (unsigned int)tid;
        const int count = (int)hist[bin];
        int unused;
        const int above = block_exclusive_scan(count, scratch, &unused);
        if (above < needed && above + count >= needed) {
            chosen_digit = bin;
            still_needed = needed - above;
        }
        __syncthreads();
        prefix |= chosen_digit << shift;
        mask |= 255u << shift;
        needed = still_needed;
        __syncthreads();
    }
    // `prefix` is the k-th largest value; every larger value is kept, and the first `needed`
    // values equal to it.
    int ties = 0;
#pragma unroll
    for (int j = 0; j < MAX_PER; ++j) {
        const int i = first + j;
        ties += (j < per && i < n && key[j] == prefix) ? 1 : 0;
    }
    int unused;
    int tie_rank = block_exclusive_scan(ties, scratch, &unused);
    int kept = 0;
    bool keep[MAX_PER];
#pragma unroll
    for (int j = 0; j < MAX_PER; ++j) {
        const int i = first + j;
        const bool valid = j < per && i < n;
        bool take = valid && key[j] > prefix;
        if (valid && key[j] == prefix) {
            take = tie_rank < needed;
            ++tie_rank;
        }
        keep[j] = take;
        kept += take ? 1 : 0;
    }
    int at = block_exclusive_scan(kept, scratch, &unused);
#pragma unroll
    for (int j = 0; j < MAX_PER; ++j) {
        if (keep[j]) row_out[at++] = first + j;
    }
}

// Aggregation of one group's chunks over `peers` peers: for every chunk row, the mean of the
// values the peers sent for each of its h·w positions (0 where none did), written straight to
// the group's dense output at the chunk's place. A block per chunk row accumulates in shared
// memory (2·h·w floats), so no global atomics and no zero-filled buffers are needed; every
// output element belongs to exactly one chunk and is written once.
// local, values: (peers, rows, k); row_out: offset of each chunk's first element in `dense`;
// row_cols: the row length of each chunk's parameter.
extern "C" __global__ void chunk_mean(const short* __restrict__ local, const float* __restrict__ values,
                                      const long long* __restrict__ row_out, const long long* __restrict__ row_cols,
                                      float* __restrict__ dense, int peers, long long rows, int k, int h, int w) {
    extern __shared__ float accumulators[];
    const int totalk = h * w;
    float* sum = accumulators;
    float* count = accumulators + totalk;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        for (int t = threadIdx.x; t < totalk; t += blockDim.x) {
            sum[t] = 0.0f;
            count[t] = 0.0f;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < peers * k; i += blockDim.x) {
            const int p = i / k, j = i - p * k;
            const long long at = ((long long)p * rows + row) * k + j;
            const int l = local[at];
            if (l >= 0 && l < totalk) {
                atomicAdd(&sum[l], values[at]);
                atomicAdd(&count[l], 1.0f);
            }
        }
        __syncthreads();
        const long long base = row_out[row], cols = row_cols[row];
        for (int t = threadIdx.x; t < totalk; t += blockDim.x) {
            dense[base + (long long)(t / w) * cols + t % w] = sum[t] / fmaxf(count[t], 1.0f);
        }
        __syncthreads();
    }
}
