import { describe, expect, it } from 'vitest';
import { globMatch, normalizePattern } from '../../src/chat/glob.js';

const m = (pattern: string, name: string) => globMatch(normalizePattern(pattern), name);

describe('glob', () => {
  it('empty pattern and * match everything', () => {
    expect(m('', 'alice')).toBe(true);
    expect(m('*', 'alice')).toBe(true);
    expect(m('***', '')).toBe(true);
  });

  it('? matches exactly one character', () => {
    expect(m('b?b', 'bob')).toBe(true);
    expect(m('b?b', 'bb')).toBe(false);
    expect(m('b?b', 'boob')).toBe(false);
  });

  it('* matches any run, including none', () => {
    expect(m('a*e', 'alice')).toBe(true);
    expect(m('a*e', 'ae')).toBe(true);
    expect(m('a*e', 'alicex')).toBe(false);
    expect(m('*li*', 'alice')).toBe(true);
    expect(m('*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).toBe(false);
  });

  it('is case-insensitive both ways', () => {
    expect(m('ALI*', 'alice')).toBe(true);
    expect(m('ali*', 'ALICE')).toBe(true);
  });

  it('treats % and _ and regex characters literally', () => {
    expect(m('a_b', 'a_b')).toBe(true);
    expect(m('a_b', 'axb')).toBe(false);
    expect(m('%', 'alice')).toBe(false);
    expect(m('a%', 'a%')).toBe(true);
    expect(m('a.c', 'abc')).toBe(false);
    expect(m('a.c', 'a.c')).toBe(true);
    expect(m('[a]', 'a')).toBe(false);
  });

  it('terminates on pathological patterns (a backtracking RegExp would not)', () => {
    const pattern = `${'*a'.repeat(200)}b`;
    expect(m(pattern, 'a'.repeat(32))).toBe(false);
    expect(m(`${'*a'.repeat(16)}*`, 'a'.repeat(32))).toBe(true);
  });
});

describe('case folding', () => {
  it('is ASCII-only: the Kelvin sign is not a k', () => {
    expect(m('\u212Aate', 'kate')).toBe(false);
    expect(m('KATE', 'kate')).toBe(true);
  });
});
