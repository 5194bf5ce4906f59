// `eidetic serve` with a stand-in engine that streams progress as fast as a real one on a fast machine
// (so a probe can push thousands of progress events through a job with huge parameters in seconds), in
// its own process so its memory is measured alone. Used by server-jobs.test.ts.
//   node fake-engine-serve.mjs <dist folder> <project folder> <progress events per second> <events>
// Prints {port, token, url} as one JSON line when listening, like `eidetic serve --json`.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, project, rateArg, countArg] = process.argv.slice(2);
const rate = Number(rateArg);
const count = Number(countArg);
const load = (rel) => import(pathToFileURL(path.join(dist, rel)).href);
const { Backend } = await load('main/core/backend.js');
const { serve } = await load('main/server/serve.js');

/** An engine channel that answers every job with `count` progress messages at `rate` per second, then a result. */
function fakeLauncher() {
  return () => {
    let onMessage = () => {};
    const running = new Map();
    return {
      pid: process.pid,
      send(msg) {
        if (msg.type === 'run') {
          const total = Array.isArray(msg.params?.prompts) ? msg.params.prompts.length : count;
          let done = 0;
          const perTick = Math.max(1, Math.round(rate / 100));
          const timer = setInterval(() => {
            for (let i = 0; i < perTick && done < count; i++) {
              done++;
              onMessage({ type: 'progress', jobId: msg.jobId, done: Math.round((done / count) * total), total, message: `scoring ${done}/${count}` });
            }
            if (done >= count) {
              clearInterval(timer);
              running.delete(msg.jobId);
              onMessage({ type: 'result', jobId: msg.jobId, value: { scores: [], promptsPerSecond: 0 } });
            }
          }, 10);
          running.set(msg.jobId, timer);
        } else if (msg.type === 'cancel') {
          clearInterval(running.get(msg.jobId));
          running.delete(msg.jobId);
          onMessage({ type: 'error', jobId: msg.jobId, error: { code: 'cancelled', message: 'cancelled' } });
        }
      },
      onMessage(cb) {
        onMessage = cb;
        setImmediate(() => cb({ type: 'ready', pid: process.pid }));
      },
      onExit() {},
      kill() {},
    };
  };
}

const backend = new Backend({ host: 'browser', launcher: fakeLauncher() });
await backend.call('project.open', { dir: project });
const running = await serve(backend, { port: 0 });
process.stdout.write(JSON.stringify({ url: running.url, port: running.port, token: running.token }) + '\n');
process.on('SIGTERM', () => process.exit(0));
