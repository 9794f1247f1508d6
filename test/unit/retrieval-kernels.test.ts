import { afterEach, describe, expect, it } from 'vitest';

import { gemm, gemmAtAdd, gemmBt, useWasmKernels } from '../../models/retrieval/linalg.js';
import { wasmGemmAvailable } from '../../models/retrieval/wasm-gemm.js';
import { Rng } from '../../models/retrieval/rng.js';

const rng = new Rng(9);
const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());

/** Runs `f` on the JavaScript loops and on the WebAssembly kernel; returns both outputs. */
function both(f: () => Float32Array): [Float32Array, Float32Array] {
  useWasmKernels(false);
  const js = f();
  useWasmKernels(true);
  const wasm = f();
  return [js, wasm];
}

function expectClose(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  expect(worst).toBeLessThan(1e-4);
}

// Shapes large enough for the kernel, with rows and columns that are not multiples of 4.
const SHAPES: Array<[number, number, number]> = [
  [37, 29, 23],
  [64, 176, 128],
  [130, 64, 401],
];

describe('dense kernels', () => {
  afterEach(() => useWasmKernels(true));

  it('has the WebAssembly SIMD kernel on this runtime', () => {
    expect(wasmGemmAvailable).toBe(true);
  });

  it.each(SHAPES)('gemm with bias: WebAssembly matches JavaScript (%i×%i×%i)', (m, k, n) => {
    const a = random(m * k);
    const b = random(k * n);
    const bias = random(n);
    const [js, wasm] = both(() => {
      const c = new Float32Array(m * n);
      gemm(a, b, c, m, k, n, bias);
      return c;
    });
    expectClose(js, wasm);
    // And the JavaScript loops match a plain triple loop.
    const row = 3;
    const col = 5;
    let expected = bias[col] as number;
    for (let p = 0; p < k; p++) expected += (a[row * k + p] as number) * (b[p * n + col] as number);
    expect(js[row * n + col]).toBeCloseTo(expected, 3);
  });

  it.each(SHAPES)('gemmBt: WebAssembly matches JavaScript (%i×%i×%i)', (m, n, k) => {
    const a = random(m * n);
    const b = random(k * n);
    const [js, wasm] = both(() => {
      const c = new Float32Array(m * k);
      gemmBt(a, b, c, m, n, k);
      return c;
    });
    expectClose(js, wasm);
  });

  it.each(SHAPES)('gemmAtAdd accumulates: WebAssembly matches JavaScript (%i×%i×%i)', (m, k, n) => {
    const a = random(m * k);
    const b = random(m * n);
    const start = random(k * n);
    const [js, wasm] = both(() => {
      const c = Float32Array.from(start);
      gemmAtAdd(a, b, c, m, k, n);
      return c;
    });
    expectClose(js, wasm);
  });
});
