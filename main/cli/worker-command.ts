/** `eidetic worker`: runs queue shards (docs/SCALE-OUT.md); and the --queue options of the commands that submit them. */
import type { Command } from 'commander';
import type { Backend } from '../core/backend.js';
import { EideticError } from '../util/errors.js';
import { makeOutput } from './output.js';

/** --queue and its connection options, on a command whose jobs may run on queue workers. */
export function withQueueOptions(command: Command): Command {
  return command
    .option('--queue <url>', 'run the job in shards on queue workers: redis://HOST:PORT or rediss://HOST:PORT (TLS); password from EIDETIC_REDIS_PASSWORD')
    .option('--tls-ca <file>', 'PEM file of the CA that signed the Redis server certificate (rediss://)')
    .option('--redis-password-file <file>', 'read the Redis password (AUTH) from this file');
}

export async function applyQueueOptions(backend: Backend, opts: Record<string, unknown>): Promise<void> {
  if (typeof opts.queue !== 'string') return;
  await backend.useQueue({ url: opts.queue, tlsCa: opts.tlsCa as string | undefined, passwordFile: opts.redisPasswordFile as string | undefined });
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run shards of detection, search, generation, match, SolidMark and benchmark jobs from a job queue (BullMQ on Redis) in this machine\'s engine')
    .requiredOption('--queue <url>', 'redis://HOST:PORT or rediss://HOST:PORT (TLS); password from EIDETIC_REDIS_PASSWORD or --redis-password-file')
    .option('--name <name>', 'the name the submitters see (default: host name and process id)')
    .option('--ep <provider>', 'execution provider for every shard: auto|cpu|webgpu|cuda|dml|coreml (default: the submitter\'s choice)')
    .option('--models <dirs...>', 'model folders, or folders of model folders, this worker may run (matched by their files\' sha256)', [])
    .option('--tls-ca <file>', 'PEM file of the CA that signed the Redis server certificate')
    .option('--redis-password-file <file>', 'read the Redis password (AUTH) from this file')
    .option('--heartbeat-seconds <s>', 'how often the worker says it is alive; it counts as live while its last beat is within 3 of these', '10')
    .option('--lock-seconds <s>', 'how long a shard stays locked without a sign of life: a dead worker\'s shard is back on the queue within 1.5 times this (default: twice --heartbeat-seconds)')
    .option('--json', 'print the worker\'s description as one JSON line when it is ready')
    .action(async (opts: { queue: string; name?: string; ep?: string; models: string[]; tlsCa?: string; redisPasswordFile?: string; heartbeatSeconds: string; lockSeconds?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const heartbeatSeconds = Number(opts.heartbeatSeconds);
      if (!(heartbeatSeconds >= 0.5 && heartbeatSeconds <= 600)) throw new EideticError('invalid_input', `--heartbeat-seconds must be between 0.5 and 600 (got ${opts.heartbeatSeconds})`);
      const lockSeconds = opts.lockSeconds === undefined ? 2 * heartbeatSeconds : Number(opts.lockSeconds);
      if (!(lockSeconds >= 1 && lockSeconds <= 3600)) throw new EideticError('invalid_input', `--lock-seconds must be between 1 and 3600 (got ${opts.lockSeconds})`);
      if (opts.models.length === 0) throw new EideticError('invalid_input', '--models: name at least one model folder this worker may run (shards name their models by the sha256 of their files)');
      const [{ startWorker }, { forkLauncher }] = await Promise.all([import('../scaleout/worker.js'), import('../engine/channel.js')]);
      const worker = await startWorker({
        url: opts.queue,
        name: opts.name,
        ep: opts.ep,
        models: opts.models,
        tlsCa: opts.tlsCa,
        passwordFile: opts.redisPasswordFile,
        heartbeatSeconds,
        lockSeconds,
        launcher: forkLauncher(),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const info = worker.info();
      out.data(info, () => `worker ${info.name} ready: Eidetic ${info.version}, ${info.providers.join(', ')}${info.adapter ? ` (${info.adapter})` : ''}, ${info.models} model folder(s); Ctrl+C stops it`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await worker.close();
    });
}
