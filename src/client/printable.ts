// What the terminal client prints of other users' data (names, nicknames, messages) must never act on
// the terminal: an ESC could clear the screen, retitle the window or move the cursor, a CR could rewrite
// the line, a line break could start a line that looks like a real message (issue 13, finding 6). The
// server refuses such characters now; old data may still hold them, so the client neutralises them too.

/** A visible, inert stand-in for one control character: `^[` for ESC, `^M` for CR, `^?` for DEL, `\x9b` for C1. */
export function showControl(ch: string): string {
  const c = ch.codePointAt(0) ?? 0;
  if (c < 0x20) return `^${String.fromCharCode(c + 0x40)}`;
  if (c === 0x7f) return '^?';
  return `\\x${c.toString(16).padStart(2, '0')}`;
}

/** A name or other one-line field: every control character (line breaks and tabs too) made visible. */
export function oneLine(s: string): string {
  return s.replace(/\p{Cc}/gu, showControl);
}

/**
 * Message text: tabs stay, other controls are made visible, and each line break starts a continuation
 * line behind `gutter`, so no line of a message can pass for a line the client printed itself.
 */
export function textBlock(s: string, gutter: string): string {
  return s
    .split('\n')
    .map((line) => line.replace(/\p{Cc}/gu, (ch) => (ch === '\t' ? ch : showControl(ch))))
    .join(`\n${gutter}`);
}

/** The last guard on every printed line: only the client's own line breaks and tabs pass through. */
export function safeLine(s: string): string {
  return s.replace(/\p{Cc}/gu, (ch) => (ch === '\n' || ch === '\t' ? ch : showControl(ch)));
}

/** The prefix of a message's continuation lines. */
export const CONTINUATION = '  | ';
