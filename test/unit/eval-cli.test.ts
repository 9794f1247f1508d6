import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseKs, registerEvalCommand } from '../../models/cli/eval.js';

describe('recsys eval options', () => {
  it('parses the list of K', () => {
    expect(parseKs('10,50,100')).toEqual([10, 50, 100]);
    expect(parseKs(' 5 , 20 ')).toEqual([5, 20]);
    expect(() => parseKs('10,0')).toThrow(/positive integers/);
    expect(() => parseKs('10,x')).toThrow(/positive integers/);
    expect(() => parseKs('')).toThrow(/positive integers/);
  });

  it('registers `eval` with its defaults', () => {
    const program = new Command('recsys');
    registerEvalCommand(program);
    const evalCommand = program.commands.find((c) => c.name() === 'eval');
    expect(evalCommand?.opts()).toMatchObject({
      split: 'temporal',
      testFraction: 0.2,
      k: [10, 50, 100],
      windowShare: 0.05,
      seed: 0,
    });
  });
});
