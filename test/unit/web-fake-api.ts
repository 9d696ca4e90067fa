// A scriptable ChatApi for the gateway tests: records every call and answers what the test set.
import type { CallMeta, ChatApi, ChatEvent, SubscribeSink, Subscription } from '../../src/web/chat-api.js';

export interface RecordedCall {
  method: string;
  req: unknown;
  meta: CallMeta;
}

export interface FakeSubscription {
  req: { after_index: number };
  meta: CallMeta;
  sink: SubscribeSink;
  closed: boolean;
  markReady(): void;
}

export class FakeChatApi {
  readonly calls: RecordedCall[] = [];
  readonly subscriptions: FakeSubscription[] = [];
  /** method → reply (an Error-like value is thrown). */
  readonly replies = new Map<string, unknown>();
  memberList = ['127.0.0.1:5555', '127.0.0.1:5556'];
  /** When false, subscriptions are ready only once the test calls markReady(). */
  autoReady = true;
  /** What a subscription reports as its starting index once ready (the library's baseline). */
  baselineIndex = 0;

  asApi(): ChatApi {
    const rpc =
      (method: string) =>
      async (req: unknown, meta: CallMeta): Promise<never> => {
        this.calls.push({ method, req, meta });
        const reply = this.replies.get(method);
        if (reply instanceof Error || (reply && typeof reply === 'object' && 'throw' in reply)) {
          throw reply instanceof Error ? reply : (reply as { throw: unknown }).throw;
        }
        return (reply ?? {}) as never;
      };
    return {
      signup: rpc('signup'),
      login: rpc('login'),
      logout: rpc('logout'),
      deleteAccount: rpc('deleteAccount'),
      listUsers: rpc('listUsers'),
      getSettings: rpc('getSettings'),
      updateSettings: rpc('updateSettings'),
      startChat: rpc('startChat'),
      listChats: rpc('listChats'),
      sendMessage: rpc('sendMessage'),
      getMessages: rpc('getMessages'),
      readMessages: rpc('readMessages'),
      markRead: rpc('markRead'),
      editMessage: rpc('editMessage'),
      setTyping: rpc('setTyping'),
      deleteMessages: rpc('deleteMessages'),
      subscribe: (req, meta, sink): Subscription => {
        let resolveReady = () => {};
        const ready = new Promise<void>((r) => {
          resolveReady = r;
        });
        const sub: FakeSubscription = { req, meta, sink, closed: false, markReady: () => resolveReady() };
        this.subscriptions.push(sub);
        if (this.autoReady) resolveReady();
        const baseline = this.baselineIndex;
        return {
          ready,
          lastIndex: Math.max(req.after_index, baseline),
          close: () => {
            sub.closed = true;
          },
        };
      },
      members: () => this.memberList,
    };
  }
}

export function event(index: number, e: Omit<ChatEvent, 'index'>): ChatEvent {
  return { index, ...e };
}
