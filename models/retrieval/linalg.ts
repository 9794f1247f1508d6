/**
 * The few dense kernels the towers and the loss need, on row-major typed arrays. Float32 products
 * large enough to pay for copying go to the WebAssembly SIMD kernel (`wasm-gemm.ts`, about
 * 6-10 GMAC/s on one core); the rest, and every float64 product (gradient checks), run in
 * JavaScript loops blocked so that each value loaded feeds several multiply-adds (about 1 GMAC/s).
 */
import { wasmGemm, wasmGemmAvailable } from './wasm-gemm.js';

/** Products smaller than this many multiply-adds stay in JavaScript. */
const WASM_MIN_WORK = 8192;

let wasmEnabled = wasmGemmAvailable;

/** Turns the WebAssembly kernel off or on (to compare both paths in tests and benchmarks). */
export function useWasmKernels(enabled: boolean): void {
  wasmEnabled = enabled && wasmGemmAvailable;
}

function useWasm(work: number, ...arrays: (Vec | undefined)[]): boolean {
  return (
    wasmEnabled &&
    work >= WASM_MIN_WORK &&
    arrays.every((a) => a === undefined || a instanceof Float32Array)
  );
}

/** Storage of parameters and activations: float32 to train and serve, float64 for gradient checks. */
export type Vec = Float32Array | Float64Array;

/** A constructor of {@link Vec}, so a model allocates every buffer in one precision. */
export type VecConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * `c[m×n] = a[m×k] · b[k×n]`, plus `bias[n]` on every row when given. Rows of `a` go four at a
 * time so each element of `b` is loaded once per four rows; zero inputs (after a ReLU) are skipped.
 */
export function gemm(a: Vec, b: Vec, c: Vec, m: number, k: number, n: number, bias?: Vec): void {
  if (useWasm(m * k * n, a, b, c, bias)) {
    wasmGemm(a as Float32Array, b as Float32Array, c as Float32Array, m, k, n, {
      bias: bias as Float32Array | undefined,
    });
    return;
  }
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const a0 = r * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    const c0 = r * n;
    const c1 = c0 + n;
    const c2 = c1 + n;
    const c3 = c2 + n;
    for (let j = 0; j < n; j++) {
      const v = bias === undefined ? 0 : (bias[j] as number);
      c[c0 + j] = v;
      c[c1 + j] = v;
      c[c2 + j] = v;
      c[c3 + j] = v;
    }
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p] as number;
      const x1 = a[a1 + p] as number;
      const x2 = a[a2 + p] as number;
      const x3 = a[a3 + p] as number;
      if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) {
        const w = b[bo + j] as number;
        c[c0 + j] = (c[c0 + j] as number) + x0 * w;
        c[c1 + j] = (c[c1 + j] as number) + x1 * w;
        c[c2 + j] = (c[c2 + j] as number) + x2 * w;
        c[c3 + j] = (c[c3 + j] as number) + x3 * w;
      }
    }
  }
  for (; r < m; r++) {
    const ao = r * k;
    const co = r * n;
    for (let j = 0; j < n; j++) c[co + j] = bias === undefined ? 0 : (bias[j] as number);
    for (let p = 0; p < k; p++) {
      const x = a[ao + p] as number;
      if (x === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) c[co + j] = (c[co + j] as number) + x * (b[bo + j] as number);
    }
  }
}

/**
 * `c[m×k] = a[m×n] · b[k×n]ᵀ`: every row of `a` dotted with every row of `b`, in 2×2 blocks.
 */
export function gemmBt(a: Vec, b: Vec, c: Vec, m: number, n: number, k: number): void {
  if (useWasm(m * k * n, a, b, c)) {
    wasmGemm(a as Float32Array, b as Float32Array, c as Float32Array, m, n, k, {
      bTransposed: true,
    });
    return;
  }
  let r = 0;
  for (; r + 2 <= m; r += 2) {
    const a0 = r * n;
    const a1 = a0 + n;
    let q = 0;
    for (; q + 2 <= k; q += 2) {
      const b0 = q * n;
      const b1 = b0 + n;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      for (let j = 0; j < n; j++) {
        const x0 = a[a0 + j] as number;
        const x1 = a[a1 + j] as number;
        const y0 = b[b0 + j] as number;
        const y1 = b[b1 + j] as number;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      c[r * k + q] = s00;
      c[r * k + q + 1] = s01;
      c[(r + 1) * k + q] = s10;
      c[(r + 1) * k + q + 1] = s11;
    }
    for (; q < k; q++) {
      c[r * k + q] = dot(a, a0, b, q * n, n);
      c[(r + 1) * k + q] = dot(a, a1, b, q * n, n);
    }
  }
  for (; r < m; r++) {
    for (let q = 0; q < k; q++) c[r * k + q] = dot(a, r * n, b, q * n, n);
  }
}

/**
 * `c[k×n] += a[m×k]ᵀ · b[m×n]`: the weight gradient of a dense layer (inputs `a`, output
 * gradients `b`), four rows at a time.
 */
export function gemmAtAdd(a: Vec, b: Vec, c: Vec, m: number, k: number, n: number): void {
  if (useWasm(m * k * n, a, b, c)) {
    wasmGemm(a as Float32Array, b as Float32Array, c as Float32Array, k, m, n, {
      aTransposed: true,
      accumulate: true,
    });
    return;
  }
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const a0 = r * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    const b0 = r * n;
    const b1 = b0 + n;
    const b2 = b1 + n;
    const b3 = b2 + n;
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p] as number;
      const x1 = a[a1 + p] as number;
      const x2 = a[a2 + p] as number;
      const x3 = a[a3 + p] as number;
      if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) continue;
      const co = p * n;
      for (let j = 0; j < n; j++) {
        c[co + j] =
          (c[co + j] as number) +
          x0 * (b[b0 + j] as number) +
          x1 * (b[b1 + j] as number) +
          x2 * (b[b2 + j] as number) +
          x3 * (b[b3 + j] as number);
      }
    }
  }
  for (; r < m; r++) {
    const ao = r * k;
    const bo = r * n;
    for (let p = 0; p < k; p++) {
      const x = a[ao + p] as number;
      if (x === 0) continue;
      const co = p * n;
      for (let j = 0; j < n; j++) c[co + j] = (c[co + j] as number) + x * (b[bo + j] as number);
    }
  }
}

/** Column sums of `a[m×n]` added to `out[n]` (the bias gradient). */
export function addColumnSums(a: Vec, out: Vec, m: number, n: number): void {
  for (let r = 0; r < m; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) out[j] = (out[j] as number) + (a[o + j] as number);
  }
}

/** Dot product of `n` values of `a` from `ao` and of `b` from `bo`. */
export function dot(a: Vec, ao: number, b: Vec, bo: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += (a[ao + j] as number) * (b[bo + j] as number);
  return s;
}
