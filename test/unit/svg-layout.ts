// Reads a Graphviz SVG for layout checks: every text's box (from its position, anchor and font size,
// with widths from Graphviz's own font metrics, so the boxes are the ones the layout reserved), each
// edge's label box and its path. No browser: the SVG is parsed as text.

import { instance } from '@viz-js/viz';

export interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface SvgText extends Box {
  text: string;
  /** The <title> of the group (node, edge or cluster) it belongs to. */
  owner: string;
}

export interface SvgEdge {
  title: string;
  label: Box | null;
  labelText: string;
  /** Points along the edge's curves. */
  points: [number, number][];
}

/** Widths of printable ASCII at font size 1, as Graphviz measures Helvetica (its layout uses them). */
export async function helveticaWidths(): Promise<Map<string, number>> {
  const viz = await instance();
  const chars = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  // Ten of each (a lone space label would be trimmed: "x x" minus two x's gives the space).
  const nodes = chars.map((c, i) => `n${i} [label="${esc(c === ' ' ? 'x x' : c.repeat(10))}"]`);
  const json = viz.renderJSON(`digraph { node [fontname=Helvetica, fontsize=100]; ${nodes.join('; ')} }`) as {
    objects: { name: string; _ldraw_: { op: string; width?: number }[] }[];
  };
  const widths = new Map<string, number>();
  for (const o of json.objects) {
    const c = chars[Number(o.name.slice(1))]!;
    const w = o._ldraw_.find((op) => op.op === 'T')?.width ?? 0;
    widths.set(c, c === ' ' ? w / 100 : w / 1000);
  }
  widths.set(' ', widths.get(' ')! - 2 * widths.get('x')!);
  return widths;
}

function xmlText(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

function attr(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

function textsOf(body: string, owner: string, widths: Map<string, number>): SvgText[] {
  const out: SvgText[] = [];
  const wide = widths.get('M') ?? 0.83;
  for (const m of body.matchAll(/<text([^>]*)>([^<]*)<\/text>/g)) {
    const tag = m[1]!;
    const text = xmlText(m[2]!);
    const x = Number(attr(tag, 'x'));
    const y = Number(attr(tag, 'y'));
    const size = Number(attr(tag, 'font-size'));
    const width = [...text].reduce((s, c) => s + (widths.get(c) ?? wide), 0) * size;
    const anchor = attr(tag, 'text-anchor');
    const left = anchor === 'middle' ? x - width / 2 : anchor === 'end' ? x - width : x;
    // The baseline is at y: ascenders above it, descenders below.
    out.push({ text, owner, left, right: left + width, top: y - size * 0.75, bottom: y + size * 0.2 });
  }
  return out;
}

/** Points of an SVG path made of M and C commands (what Graphviz writes), sampled along each curve. */
function pathPoints(d: string, steps = 24): [number, number][] {
  const nums = (d.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number);
  const pts: [number, number][] = [];
  for (let i = 0; i + 1 < nums.length; i += 2) pts.push([nums[i]!, nums[i + 1]!]);
  const out: [number, number][] = [];
  for (let i = 0; i + 3 < pts.length; i += 3) {
    const [p0, p1, p2, p3] = [pts[i]!, pts[i + 1]!, pts[i + 2]!, pts[i + 3]!];
    for (let k = 0; k <= steps; k++) {
      const t = k / steps;
      const u = 1 - t;
      out.push([
        u * u * u * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t * t * t * p3[0],
        u * u * u * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t * t * t * p3[1],
      ]);
    }
  }
  return out;
}

function union(boxes: Box[]): Box | null {
  if (boxes.length === 0) return null;
  return {
    left: Math.min(...boxes.map((b) => b.left)),
    right: Math.max(...boxes.map((b) => b.right)),
    top: Math.min(...boxes.map((b) => b.top)),
    bottom: Math.max(...boxes.map((b) => b.bottom)),
  };
}

export function parseSvg(svg: string, widths: Map<string, number>): { texts: SvgText[]; edges: SvgEdge[] } {
  const texts: SvgText[] = [];
  const edges: SvgEdge[] = [];
  // Graphviz writes each node, edge and cluster as a flat <g class="..."> with a <title> first.
  for (const m of svg.matchAll(/<g id="[^"]*" class="([^"]*)">\s*<title>([^<]*)<\/title>([\s\S]*?)<\/g>/g)) {
    const kind = m[1]!.split(' ')[0];
    const title = xmlText(m[2]!);
    const body = m[3]!;
    const own = textsOf(body, title, widths);
    texts.push(...own);
    if (kind === 'edge') {
      const d = /<path[^>]*\sd="([^"]*)"/.exec(body)?.[1] ?? '';
      edges.push({
        title,
        label: union(own),
        labelText: own.map((t) => t.text).join(' '),
        points: pathPoints(d),
      });
    }
  }
  return { texts, edges };
}

export function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

export function inside(p: [number, number], b: Box, margin = 1): boolean {
  return (
    p[0] > b.left + margin && p[0] < b.right - margin && p[1] > b.top + margin && p[1] < b.bottom - margin
  );
}

/** Texts of different owners whose boxes overlap, and edges that run through another edge's label. */
export function layoutProblems(svg: string, widths: Map<string, number>): string[] {
  const { texts, edges } = parseSvg(svg, widths);
  const problems: string[] = [];
  for (let i = 0; i < texts.length; i++)
    for (let k = i + 1; k < texts.length; k++) {
      const a = texts[i]!;
      const b = texts[k]!;
      if (a.owner !== b.owner && overlaps(a, b))
        problems.push(`"${a.text}" (${a.owner}) overlaps "${b.text}" (${b.owner})`);
    }
  for (const e of edges) {
    if (!e.label) continue;
    for (const other of edges) {
      if (other === e) continue;
      if (other.points.some((p) => inside(p, e.label!)))
        problems.push(`edge ${other.title} runs through the label of ${e.title} ("${e.labelText}")`);
    }
  }
  return problems;
}
