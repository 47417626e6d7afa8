/**
 * Reads the project's Dockerfile into its stages and replays them without a container engine:
 * each stage gets a directory that stands for its root file system, COPY copies from the build
 * context (minus .dockerignore) or from an earlier stage, RUN runs the same shell command in the
 * stage's WORKDIR with the stage's ENV. What the final stage's directory holds is what the image
 * would hold under the same paths; its ENTRYPOINT can then be started from there.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Instructions in order (continuation lines joined, comments dropped), grouped by FROM. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let current = lines[i] ?? '';
    if (/^\s*(#|$)/.test(current)) continue;
    while (current.endsWith('\\') && i + 1 < lines.length) current = `${current.slice(0, -1)} ${(lines[++i] ?? '').trim()}`;
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(current);
    if (!match?.[1] || match[2] === undefined) throw new Error(`Dockerfile line ${start}: cannot read "${current}"`);
    const keyword = match[1].toUpperCase();
    const args = match[2].trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from?.[1]) throw new Error(`Dockerfile line ${start}: FROM ${args}`);
      stages.push({ name: from[2] ?? String(stages.length), from: from[1], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${start}: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args, line: start });
  }
  return stages;
}

/** A JSON-array (exec form) argument list, as ENTRYPOINT/CMD write it. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form list: ${args}`);
  return parsed;
}

/** `KEY=value` pairs of an ENV instruction (no quoting: the project's Dockerfile needs none). */
function envPairs(args: string): [string, string][] {
  return args.split(/\s+/).map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`ENV ${args}: write KEY=value`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
}

/** A .dockerignore matcher for the patterns the project uses: names, `**` prefixes and `*` globs. */
function ignoreMatcher(contextDir: string): (relative: string) => boolean {
  const file = path.join(contextDir, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  const regexes = patterns.map((p) => {
    const body = p
      .replace(/[.+^${}()|[\]]/g, '\\$&')
      .replace(/\*\*\//g, '(?:.*/)?')
      .replace(/\*/g, '[^/]*');
    return new RegExp(`^${body}(?:/.*)?$`);
  });
  return (relative) => regexes.some((r) => r.test(relative));
}

export interface ReplayedImage {
  /** Directory standing for the final stage's root file system. */
  root: string;
  /** The final WORKDIR, inside `root`. */
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  user: string | undefined;
  /** Every RUN command executed, in order. */
  commands: string[];
}

/** Replays every stage of `stages` under `outDir`; throws with the output of a failing RUN. */
export function replayDockerfile(stages: Stage[], contextDir: string, outDir: string, baseEnv: NodeJS.ProcessEnv): ReplayedImage {
  const ignored = ignoreMatcher(contextDir);
  const roots = new Map<string, string>();
  const commands: string[] = [];
  let last: ReplayedImage | undefined;
  for (const stage of stages) {
    const root = path.join(outDir, stage.name);
    mkdirSync(root, { recursive: true });
    roots.set(stage.name, root);
    let workdir = root;
    const env: Record<string, string> = {};
    let entrypoint: string[] = [];
    let user: string | undefined;
    const inStage = (p: string) => (path.isAbsolute(p) ? path.join(root, p) : path.join(workdir, p));
    for (const { keyword, args, line } of stage.instructions) {
      switch (keyword) {
        case 'WORKDIR':
          workdir = inStage(args);
          mkdirSync(workdir, { recursive: true });
          break;
        case 'ENV':
          for (const [key, value] of envPairs(args)) env[key] = value;
          break;
        case 'COPY': {
          const words = args.split(/\s+/);
          const fromFlag = words[0]?.startsWith('--from=') ? words.shift()?.slice('--from='.length) : undefined;
          const dest = words.pop();
          if (!dest || words.length === 0) throw new Error(`Dockerfile line ${line}: COPY ${args}`);
          const sourceRoot = fromFlag === undefined ? undefined : roots.get(fromFlag);
          if (fromFlag !== undefined && !sourceRoot) throw new Error(`Dockerfile line ${line}: no earlier stage ${fromFlag}`);
          const target = inStage(dest);
          for (const source of words) {
            const from = sourceRoot ? path.join(sourceRoot, source) : path.join(contextDir, source);
            const into = dest.endsWith('/') ? path.join(target, path.basename(source)) : target;
            mkdirSync(path.dirname(into), { recursive: true });
            cpSync(from, into, {
              recursive: true,
              filter: (file) => sourceRoot !== undefined || !ignored(path.relative(contextDir, file).split(path.sep).join('/')),
            });
          }
          break;
        }
        case 'RUN': {
          commands.push(args);
          const run = spawnSync('sh', ['-c', args], { cwd: workdir, env: { ...baseEnv, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
          if (run.status !== 0) throw new Error(`Dockerfile line ${line}: RUN ${args} exited ${run.status}\n${run.stdout}\n${run.stderr}`);
          break;
        }
        case 'USER':
          user = args;
          break;
        case 'ENTRYPOINT':
        case 'CMD':
          entrypoint = execForm(args);
          break;
        case 'EXPOSE':
        case 'LABEL':
        case 'ARG':
          break;
        default:
          throw new Error(`Dockerfile line ${line}: ${keyword} is not replayed by test/support/dockerfile.ts`);
      }
    }
    if (!statSync(workdir).isDirectory()) throw new Error(`stage ${stage.name}: WORKDIR is not a directory`);
    last = { root, workdir, env, entrypoint, user, commands };
  }
  if (!last) throw new Error('the Dockerfile has no stage');
  return { ...last, commands };
}
