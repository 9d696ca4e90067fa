// A Subscribe stream that survives the replica it is on: when the stream breaks it reconnects to another
// member and resumes with SubscribeRequest.after_index = the last ChatEvent.index delivered, so no event
// is missed; events at or below that index are dropped as a safety net, so none is repeated.
import * as grpc from '@grpc/grpc-js';
import { type BackoffOptions, backoffDelay } from './backoff.js';
import { transportWording, unaryAttempt } from './call.js';
import { ChatClientError, isRetryable, toClientError } from './errors.js';
import type { Members } from './members.js';
import type { ChatEvent, ClusterStatus } from './types.js';

export interface SubscribeHandlers {
  /** Every event, once, in index order. */
  onEvent: (event: ChatEvent) => void;
  /** The first stream is established (the server sent its headers or an event). */
  onConnect?: (address: string) => void;
  /** The established stream broke (once per outage; the subscription is reconnecting). */
  onDisconnect?: (address: string, error: ChatClientError) => void;
  /** A stream broke and a new one is established on `address` (possibly the same replica, back again). */
  onReconnect?: (address: string) => void;
  /** The subscription ended for good: a non-retryable answer (e.g. UNAUTHENTICATED after logout) or too
   * many failed reconnects in a row. Not called after close(). */
  onError?: (error: ChatClientError) => void;
}

export interface SubscribeOptions {
  /** Resume after this index from the start (e.g. a gateway re-opening its stream). Default 0. */
  afterIndex?: number;
  /** With no index to resume from yet, first ask the replica for its last_applied (ClusterService
   * GetStatus) and subscribe after it, so a break before the first event still loses nothing. Default true. */
  resumeFromStatus?: boolean;
  /** Give up after this many failed connection attempts in a row. Default 100. */
  maxConsecutiveFailures?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const streamBackoff: BackoffOptions = { initialMs: 50, maxMs: 2000, multiplier: 2 };

export class Subscription {
  /** Resolves once the first stream is established, or when the subscription ends before that. */
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private lastIdx: number;
  private call: grpc.ClientReadableStream<ChatEvent> | undefined;
  private closedFlag = false;
  private failures = 0;
  private everConnected = false;
  private broken = false;
  private currentAddress: string | undefined;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly backoff: BackoffOptions;

  constructor(
    private readonly members: Members,
    private readonly metadata: () => grpc.Metadata,
    private readonly handlers: SubscribeHandlers,
    private readonly opts: SubscribeOptions,
    private readonly onClosed: () => void,
  ) {
    this.ready = new Promise<void>((r) => {
      this.resolveReady = r;
    });
    this.lastIdx = opts.afterIndex ?? 0;
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
    this.backoff = { ...streamBackoff, ...opts.backoff };
  }

  /** The index of the last event delivered (or the resume point); the next stream resumes after it. */
  get lastIndex(): number {
    return this.lastIdx;
  }

  /** The replica the current stream is on. */
  get address(): string | undefined {
    return this.currentAddress;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal Called by ChatClient.subscribe. */
  start(): void {
    void this.open();
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.call?.cancel();
    this.call = undefined;
    this.resolveReady();
    this.onClosed();
  }

  private async open(): Promise<void> {
    if (this.closedFlag) return;
    const address = this.members.pick();
    if (!this.everConnected && this.lastIdx === 0 && this.opts.resumeFromStatus !== false) {
      try {
        const st = await unaryAttempt<ClusterStatus>(
          this.members,
          address,
          this.members.clusterStub(address),
          'GetStatus',
          {},
          new grpc.Metadata(),
          2000,
        );
        this.lastIdx = Math.max(this.lastIdx, st.last_applied);
      } catch {
        // No baseline: the stream starts with live events only, as a plain Subscribe {} would.
      }
      if (this.closedFlag) return;
    }
    const stub = this.members.chatStub(address) as unknown as {
      Subscribe: (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<ChatEvent>;
    };
    const call = stub.Subscribe({ after_index: this.lastIdx }, this.metadata());
    this.call = call;
    this.currentAddress = address;
    let established = false;
    let finished = false;
    const establish = () => {
      if (established) return;
      established = true;
      this.failures = 0;
      if (this.everConnected) {
        if (this.broken) this.handlers.onReconnect?.(address);
      } else {
        this.handlers.onConnect?.(address);
      }
      this.everConnected = true;
      this.broken = false;
      this.resolveReady();
    };
    const finish = (e: ChatClientError) => {
      if (finished) return;
      finished = true;
      if (this.call === call) this.call = undefined;
      void this.onBreak(address, e);
    };
    call.on('metadata', (md: grpc.Metadata) => {
      this.members.absorb(md);
      establish();
    });
    call.on('data', (ev: ChatEvent) => {
      establish();
      this.deliver(ev);
    });
    call.on('error', (err: unknown) => finish(transportWording(toClientError(err), address)));
    call.on('status', (s: grpc.StatusObject) => {
      this.members.absorb(s.metadata);
      // A clean end (e.g. the replica shutting down) is still a break: the subscription goes on elsewhere.
      if (s.code === grpc.status.OK)
        finish(new ChatClientError(grpc.status.UNAVAILABLE, 'The event stream ended.'));
    });
  }

  private deliver(ev: ChatEvent): void {
    if (this.closedFlag) return;
    // A typing event is ephemeral (never replayed) and carries the replica's applied index, which an
    // earlier event may share: it neither moves nor is filtered by the resume position.
    if (ev.index > 0 && ev.event !== 'typing') {
      if (ev.index <= this.lastIdx) return; // replayed by the new replica, already delivered
      this.lastIdx = ev.index;
    }
    this.handlers.onEvent(ev);
  }

  private async onBreak(address: string, e: ChatClientError): Promise<void> {
    if (this.closedFlag) return;
    // A stream the server cut because we fell behind (RESOURCE_EXHAUSTED) resumes like a broken one.
    if (!isRetryable(e) && e.code !== grpc.status.RESOURCE_EXHAUSTED) return this.fail(e);
    if (this.everConnected && !this.broken) this.handlers.onDisconnect?.(address, e);
    this.broken = true;
    this.members.markFailed(address);
    this.failures++;
    if (this.failures > (this.opts.maxConsecutiveFailures ?? 100)) return this.fail(e);
    await this.sleep(backoffDelay(this.failures, this.random, this.backoff));
    await this.open();
  }

  private fail(e: ChatClientError): void {
    if (this.closedFlag) return;
    this.close();
    this.handlers.onError?.(e);
  }
}
