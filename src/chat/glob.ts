// ListUsers' pattern language (API.md): a case-insensitive glob where `*` is any run, `?` is exactly
// one character, and every other character is literal (SQL's `%` and `_` included). Empty means `*`.
//
// Matching is the classic greedy two-pointer algorithm with one backtrack point: O(pattern × name) in
// the worst case and never exponential, unlike a glob translated into a backtracking RegExp.

/**
 * ASCII-only case folding. Usernames are ASCII; Unicode folding would let e.g. the Kelvin sign (U+212A)
 * stand for 'k' in a name or a pattern.
 */
export const foldCase = (s: string): string =>
  s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));

/** Lower-cases a pattern and collapses runs of `*` (they mean the same as one). */
export function normalizePattern(pattern: string): string[] {
  const chars = [...(pattern === '' ? '*' : foldCase(pattern))];
  const out: string[] = [];
  for (const c of chars) {
    if (c === '*' && out[out.length - 1] === '*') continue;
    out.push(c);
  }
  return out;
}

/** Does `name` (any case) match the normalized pattern `p`? */
export function globMatch(p: string[], name: string): boolean {
  const s = [...foldCase(name)];
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < s.length) {
    if (j < p.length && p[j] !== '*' && (p[j] === '?' || p[j] === s[i])) {
      i++;
      j++;
    } else if (j < p.length && p[j] === '*') {
      star = j++;
      mark = i;
    } else if (star >= 0) {
      j = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (j < p.length && p[j] === '*') j++;
  return j === p.length;
}
