// Reads a Server-Sent Events response frame by frame, with deadlines (for the gateway tests).

export interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

/** Reads an SSE response frame by frame. */
export class SseReader {
  private buf = '';
  private readonly frames: Frame[] = [];
  private readonly decoder = new TextDecoder();
  ended = false;
  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    readonly abort: () => void,
  ) {}

  /** The next frame, or undefined if the stream ended first. Deadline-bounded. */
  async next(timeoutMs = 3000): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no SSE frame before the deadline');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error('no SSE frame before the deadline')), left);
      });
      const { value, done } = await Promise.race([this.reader.read(), timeout]).finally(() =>
        clearTimeout(timer),
      );
      if (done) this.ended = true;
      else this.push(this.decoder.decode(value, { stream: true }));
    }
    return this.frames.shift();
  }

  /** Skips keepalives and member updates until a frame of `event` type (undefined: a chat event). */
  async until(event: string | undefined): Promise<Frame> {
    for (let i = 0; i < 50; i++) {
      const f = await this.next();
      if (!f) throw new Error(`stream ended before ${event ?? 'a chat event'}`);
      if (f.comment !== undefined || f.retry !== undefined) continue;
      if (f.event === event) return f;
    }
    throw new Error('too many frames');
  }

  private push(text: string): void {
    this.buf += text;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const frame: Frame = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) frame.comment = line.slice(1).trim();
        else {
          const at = line.indexOf(':');
          const key = line.slice(0, at) as keyof Frame;
          frame[key] = (frame[key] ? `${frame[key]}\n` : '') + line.slice(at + 1).replace(/^ /, '');
        }
      }
      this.frames.push(frame);
    }
  }
}
