// Preloaded into every replica by scripts/write-timeline.ts (node --import): timestamps at each step of
// the write path, written as JSON lines to $QC_TIMELINE_DIR/timeline-<pid>.jsonl. Nothing in src/ knows
// about it: it wraps prototype methods of the built modules (dist/), which are the same module
// instances the server imports. A method that is missing (renamed) stops the replica with a clear
// error rather than producing a timeline with holes.
//
// Marks: call:<method> / reply (ChatHandlers.serve, a direct or forwarded call, until it settles),
// propose (RaftNode.propose), tx:<peer>:<n messages> (a Raft batch written to a peer's stream),
// rx:<type>:<from>[:<entries>] (a Raft message received), flush / flushed (the Ready executor's group
// commit and its completion), apply (the executor applying committed entries).

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.QC_TIMELINE_DIR;
if (!dir) throw new Error('write-timeline-preload: QC_TIMELINE_DIR is not set');
const dist = new URL('../dist/src/', import.meta.url);
const file = join(dir, `timeline-${process.pid}.jsonl`);
let buf = [];
const mark = (label) => buf.push([label, performance.now()]);
const dump = () => {
  if (buf.length === 0) return;
  appendFileSync(file, `${buf.map((m) => JSON.stringify(m)).join('\n')}\n`);
  buf = [];
};
setInterval(dump, 500).unref();
process.on('exit', dump);

/** Replace proto[name] by wrap(original), after checking it exists. */
function wrap(proto, name, wrapper) {
  const original = proto[name];
  if (typeof original !== 'function') {
    throw new Error(`write-timeline-preload: ${proto.constructor.name}.${name} is gone; update the tracer`);
  }
  proto[name] = wrapper(original);
}

/** Mark `label` (or label(...args)) each time proto[name] is called, then call it. */
function markBefore(proto, name, label) {
  wrap(
    proto,
    name,
    (original) =>
      function (...args) {
        mark(typeof label === 'function' ? label(...args) : label);
        return original.apply(this, args);
      },
  );
}

const [{ ChatHandlers }, { RaftNode }, { GrpcTransport }, { ReadyExecutor }] = await Promise.all([
  import(new URL('server/chat-handlers.js', dist)),
  import(new URL('raft/node.js', dist)),
  import(new URL('raft/grpc-transport.js', dist)),
  import(new URL('raft/ready-executor.js', dist)),
]);

wrap(
  ChatHandlers.prototype,
  'serve',
  (serve) =>
    function (req) {
      mark(`call:${req.method}`);
      const settled = serve.call(this, req);
      const done = () => mark('reply');
      settled.then(done, done);
      return settled;
    },
);

markBefore(RaftNode.prototype, 'propose', 'propose');
markBefore(GrpcTransport.prototype, 'writeBatch', (peer) => `tx:${peer.id}:${peer.queue.length}`);
markBefore(ReadyExecutor.prototype, 'flush', 'flush');
markBefore(ReadyExecutor.prototype, 'flushed', 'flushed');
markBefore(ReadyExecutor.prototype, 'applyReady', 'apply');

wrap(
  GrpcTransport.prototype,
  'listen',
  (listen) =>
    function (handler) {
      return listen.call(this, (m) => {
        mark(`rx:${m.type}:${m.from}${m.type === 'AppendEntries' ? `:${m.entries.length}` : ''}`);
        handler(m);
      });
    },
);
