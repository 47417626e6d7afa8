/**
 * Artifact storage for function deployments: uploaded bundles kept on a directory (a mounted volume
 * in production) as `<dir>/<serviceId>/<filename>`, each with a sidecar `<dir>/<serviceId>/.meta/
 * <filename>.meta.json` holding its content type, size, sha256 and upload time.
 *
 * Names are checked against a strict allow list (`[A-Za-z0-9._-]`, no leading dot, ≤ 200 chars) and
 * service ids must be UUIDs; every resolved path is then asserted to sit inside the service folder,
 * and `open` refuses symlinks and anything that is not a regular file. Uploads stream into a temp
 * file in the service folder (`.tmp-<uuid>`, which no valid name can match), hashing and counting on
 * the way, stop as soon as `maxBytes` is exceeded, are fsynced and then renamed over the target, so
 * a reader sees either the old artifact or the new one, never a partial file.
 *
 * A stream source is never destroyed by `save` (on `too_large` the route can still answer 413); its
 * owner decides. Commits of the same name are serialised within one process; across processes
 * sharing the volume the last rename wins and `open` retries while the sidecar catches up.
 */
import { randomUUID, createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, open as openFile, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';

export type ArtifactErrorCode = 'invalid_name' | 'too_large' | 'unsupported_type' | 'not_found';

const defaultMessages: Record<ArtifactErrorCode, string> = {
  invalid_name: 'invalid artifact name',
  too_large: 'artifact is too large',
  unsupported_type: 'unsupported content type',
  not_found: 'artifact not found',
};

/** A refusal the route turns into a 4xx answer (see `artifactStatus`); the message is safe to show. */
export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
  constructor(
    readonly code: ArtifactErrorCode,
    message: string = defaultMessages[code],
  ) {
    super(message);
  }
}

/** HTTP status for an artifact error code. */
export function artifactStatus(code: ArtifactErrorCode): 422 | 413 | 415 | 404 {
  switch (code) {
    case 'invalid_name':
      return 422;
    case 'too_large':
      return 413;
    case 'unsupported_type':
      return 415;
    case 'not_found':
      return 404;
  }
}

export interface ArtifactInfo {
  service_id: string;
  filename: string;
  /** Normalised: lowercase, parameters stripped. */
  content_type: string;
  size_bytes: number;
  /** Lowercase hex. */
  sha256: string;
  /** ISO 8601, UTC. */
  uploaded_at: string;
  /** Set by `save` only: whether an artifact of that name already existed. */
  replaced?: boolean;
}

export interface ArtifactStoreOptions {
  /** Root directory; one sub-folder per service. Created on first upload. */
  dir: string;
  /** Largest artifact accepted, in bytes (a non-negative integer). */
  maxBytes: number;
  /** Content types accepted by `save`; normalised like uploads. Defaults to `DEFAULT_ARTIFACT_TYPES`. */
  allowedTypes?: readonly string[];
}

/** Archive, binary and text types a function bundle or its config plausibly has. */
export const DEFAULT_ARTIFACT_TYPES: readonly string[] = Object.freeze([
  'application/zip',
  'application/gzip',
  'application/x-gzip',
  'application/x-tar',
  'application/octet-stream',
  'application/java-archive',
  'application/wasm',
  'text/plain',
  'application/json',
  'application/x-yaml',
  'application/yaml',
  'text/yaml',
]);

const NAME_MAX = 200;
const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
/** Device names Windows refuses as file names, with or without an extension. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;
const META_DIR = '.meta';
const META_SUFFIX = '.meta.json';
const TEMP_PREFIX = '.tmp-';
/** Times `open` re-reads when the sidecar does not match the file (a replace in flight). */
const OPEN_ATTEMPTS = 4;
/** A sidecar is a few hundred bytes; anything much larger is not one of ours. */
const META_MAX_BYTES = 64 * 1024;

const metaSchema = z.object({
  service_id: z.string(),
  filename: z.string(),
  content_type: z.string(),
  size_bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  uploaded_at: z.string(),
});

/** `type/subtype` in lowercase without parameters, or '' when the header is not a media type. */
function normaliseType(contentType: string | undefined): string {
  const bare = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return MEDIA_TYPE.test(bare) ? bare : '';
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' && codes.includes(error.code);
}

/** A chunk from an untyped stream as a Buffer (strings appear when a stream has an encoding set). */
function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('artifact source must yield Buffers');
}

/** Iterate a source without letting an early exit destroy a stream we do not own. */
function chunksOf(source: AsyncIterable<Buffer> | Buffer): AsyncIterable<unknown> | Iterable<unknown> {
  if (Buffer.isBuffer(source)) return [source];
  if (source instanceof Readable) {
    const iterator = source.iterator({ destroyOnReturn: false }) as AsyncIterator<unknown>;
    return { [Symbol.asyncIterator]: () => iterator };
  }
  return source;
}

export class ArtifactStore {
  readonly dir: string;
  readonly maxBytes: number;
  readonly allowedTypes: ReadonlySet<string>;
  /** Tail of the commit queue per `<serviceId>/<filename>` (in-process only). */
  readonly #commits = new Map<string, Promise<void>>();

  constructor(options: ArtifactStoreOptions) {
    if (typeof options.dir !== 'string' || options.dir.length === 0) throw new TypeError('ArtifactStore: dir is required');
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) {
      throw new RangeError('ArtifactStore: maxBytes must be a non-negative integer');
    }
    this.dir = path.resolve(options.dir);
    this.maxBytes = options.maxBytes;
    const types = (options.allowedTypes ?? DEFAULT_ARTIFACT_TYPES).map((t) => normaliseType(t)).filter((t) => t !== '');
    this.allowedTypes = new Set(types);
  }

  /** The name unchanged when it is a safe artifact file name; otherwise an `invalid_name` error. */
  validateName(filename: string): string {
    const refuse = (why: string): never => {
      throw new ArtifactError('invalid_name', `invalid artifact name: ${why}`);
    };
    if (typeof filename !== 'string' || filename.length === 0) refuse('it is empty');
    if (filename.length > NAME_MAX) refuse(`it is longer than ${NAME_MAX} characters`);
    if (filename.includes('\0')) refuse('it contains a NUL character');
    if (filename.includes('/') || filename.includes('\\')) refuse('it contains a path separator');
    if (filename.includes('%')) refuse("it contains '%' (percent-encoding is not allowed)");
    if (!NAME_PATTERN.test(filename)) refuse('only letters A-Z and a-z, digits, ".", "_" and "-" are allowed');
    if (filename.startsWith('.')) refuse("it must not start with '.'");
    if (WINDOWS_RESERVED.test(filename)) refuse('it is a reserved device name');
    return filename;
  }

  /** The service id in lowercase when it is a UUID; otherwise an `invalid_name` error. */
  validateServiceId(serviceId: string): string {
    if (typeof serviceId !== 'string' || !UUID_PATTERN.test(serviceId)) {
      throw new ArtifactError('invalid_name', 'invalid service id: it must be a UUID');
    }
    return serviceId.toLowerCase();
  }

  /**
   * Stream `source` into `<dir>/<serviceId>/<filename>`, replacing any artifact of that name, and
   * record its metadata. Nothing is left on disk when it fails.
   */
  async save(
    serviceId: string,
    filename: string,
    contentType: string | undefined,
    source: AsyncIterable<Buffer> | Buffer,
  ): Promise<ArtifactInfo> {
    const service = this.validateServiceId(serviceId);
    const name = this.validateName(filename);
    const type = normaliseType(contentType);
    if (!this.allowedTypes.has(type)) {
      throw new ArtifactError('unsupported_type', type === '' ? 'missing or malformed content type' : `unsupported content type: ${type}`);
    }
    const target = this.#inside(service, name);
    const metaTarget = this.#inside(service, META_DIR, name + META_SUFFIX);
    const metaDir = path.dirname(metaTarget);
    await mkdir(metaDir, { recursive: true });
    await this.#assertServiceDir(service);

    const temp = this.#inside(service, TEMP_PREFIX + randomUUID());
    const metaTemp = this.#inside(service, META_DIR, TEMP_PREFIX + randomUUID());
    try {
      const { size, sha256 } = await this.#writeTemp(temp, source);
      return await this.#exclusive(`${service}/${name}`, async () => {
        const replaced = await lstat(target).then(
          () => true,
          (error: unknown) => {
            if (isErrno(error, 'ENOENT')) return false;
            throw error;
          },
        );
        const info: ArtifactInfo = {
          service_id: service,
          filename: name,
          content_type: type,
          size_bytes: size,
          sha256,
          uploaded_at: new Date().toISOString(),
        };
        await this.#writeFileDurably(metaTemp, JSON.stringify(info, null, 2) + '\n');
        // Artifact first, then its sidecar: a reader that catches the gap sees a size mismatch and retries.
        await rename(temp, target);
        await rename(metaTemp, metaTarget);
        return { ...info, replaced };
      });
    } finally {
      // Both are gone after a successful commit; after a failure they must not stay behind.
      await Promise.all([rm(temp, { force: true }), rm(metaTemp, { force: true })]);
    }
  }

  /**
   * The artifact's metadata and a stream of its bytes (a `Readable`, so also a NodeJS.ReadableStream).
   * The stream holds the open file: pipe it out or `destroy()` it (e.g. when answering 304), or the
   * descriptor stays open until garbage collection. It reads the file as it was when opened, even if
   * it is replaced meanwhile. Symlinks and anything but regular files are refused as `not_found`.
   */
  async open(serviceId: string, filename: string): Promise<{ info: ArtifactInfo; stream: Readable }> {
    const service = this.validateServiceId(serviceId);
    const name = this.validateName(filename);
    const target = this.#inside(service, name);
    for (let attempt = 1; ; attempt++) {
      const handle = await this.#openRegular(target);
      let handedOver = false;
      try {
        const stat = await handle.stat();
        const info = await this.#readMeta(service, name);
        if (info === undefined) throw new ArtifactError('not_found');
        if (info.size_bytes === stat.size) {
          const stream = handle.createReadStream();
          handedOver = true;
          return { info, stream };
        }
        if (attempt >= OPEN_ATTEMPTS) throw new Error(`artifact ${service}/${name}: metadata does not match the stored file`);
      } finally {
        if (!handedOver) await handle.close();
      }
      await delay(10 * attempt);
    }
  }

  /** Metadata of every artifact of the service, by file name; [] for a service without any. */
  async list(serviceId: string): Promise<ArtifactInfo[]> {
    const service = this.validateServiceId(serviceId);
    const base = this.#inside(service);
    let entries;
    try {
      const baseStat = await lstat(base);
      if (!baseStat.isDirectory()) return [];
      entries = await readdir(base, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return [];
      throw error;
    }
    const found: ArtifactInfo[] = [];
    for (const entry of entries) {
      // Dirents do not follow symlinks: a planted link is neither a file nor listed.
      if (!entry.isFile() || !this.#isValidName(entry.name)) continue;
      const info = await this.#readMeta(service, entry.name);
      if (info === undefined) continue;
      const stat = await lstat(path.join(base, entry.name)).catch(() => undefined);
      if (stat === undefined || !stat.isFile() || stat.size !== info.size_bytes) continue;
      found.push(info);
    }
    return found.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
  }

  /** `<dir>/<service>/...parts`, asserted to resolve inside the service folder. */
  #inside(service: string, ...parts: string[]): string {
    const base = path.resolve(this.dir, service);
    if (path.dirname(base) !== this.dir) throw new ArtifactError('invalid_name', 'invalid service id');
    const resolved = path.resolve(base, ...parts);
    if (parts.length > 0 && !resolved.startsWith(base + path.sep)) {
      throw new ArtifactError('invalid_name', 'invalid artifact name: it escapes the service folder');
    }
    return resolved;
  }

  #isValidName(name: string): boolean {
    try {
      this.validateName(name);
      return true;
    } catch {
      return false;
    }
  }

  /** The service folder must be a real directory, not a link pointing elsewhere. */
  async #assertServiceDir(service: string): Promise<void> {
    const stat = await lstat(this.#inside(service));
    if (!stat.isDirectory()) throw new Error(`artifact folder of service ${service} is not a directory`);
  }

  /** Copy the source into a new temp file, enforcing the limit; size and sha256 of what was written. */
  async #writeTemp(temp: string, source: AsyncIterable<Buffer> | Buffer): Promise<{ size: number; sha256: string }> {
    const hash = createHash('sha256');
    const limit = this.maxBytes;
    let size = 0;
    const counted = async function* (chunks: AsyncIterable<unknown> | Iterable<unknown>) {
      for await (const raw of chunks) {
        const chunk = toBuffer(raw);
        if (size + chunk.length > limit) throw new ArtifactError('too_large', `artifact exceeds the limit of ${limit} bytes`);
        size += chunk.length;
        hash.update(chunk);
        yield chunk;
      }
    };
    const handle = await openFile(temp, 'wx', 0o644);
    try {
      // The stream owns the handle: it fsyncs (flush) and closes it. A handle still referenced by a
      // stream cannot be closed from outside, so the close below only settles one already under way.
      await pipeline(counted(chunksOf(source)), handle.createWriteStream({ flush: true }));
    } finally {
      await handle.close();
    }
    return { size, sha256: hash.digest('hex') };
  }

  async #writeFileDurably(file: string, text: string): Promise<void> {
    const handle = await openFile(file, 'wx', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** An open handle on a regular, non-symlink file, or `not_found`. */
  async #openRegular(target: string): Promise<FileHandle> {
    let before;
    try {
      before = await lstat(target);
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) throw new ArtifactError('not_found');
      throw error;
    }
    if (!before.isFile()) throw new ArtifactError('not_found');
    let handle: FileHandle;
    try {
      // O_NOFOLLOW closes the gap between lstat and open (0 where the platform lacks it).
      handle = await openFile(target, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EMLINK')) throw new ArtifactError('not_found');
      throw error;
    }
    const after = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    if (!after.isFile()) {
      await handle.close();
      throw new ArtifactError('not_found');
    }
    return handle;
  }

  /** The sidecar of an artifact, or undefined when it is missing, unreadable or for another file. */
  async #readMeta(service: string, name: string): Promise<ArtifactInfo | undefined> {
    let handle: FileHandle;
    try {
      handle = await openFile(this.#inside(service, META_DIR, name + META_SUFFIX), fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EMLINK')) return undefined;
      throw error;
    }
    let text: string;
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > META_MAX_BYTES) return undefined;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return undefined;
    }
    const parsed = metaSchema.safeParse(json);
    if (!parsed.success || parsed.data.service_id !== service || parsed.data.filename !== name) return undefined;
    return parsed.data;
  }

  /** Run `fn` after every earlier commit of the same key has finished. */
  async #exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#commits.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#commits.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#commits.get(key) === tail) this.#commits.delete(key);
    }
  }
}
