/**
 * ArtifactStore against a real temp directory: round trips (buffer, chunked iterable, stream, 1 MiB
 * random), the size limit at and past the boundary with nothing left behind, name and service id
 * validation, content types, replace, list filtering, symlink refusal and not_found.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { ArtifactError, ArtifactStore, artifactStatus, DEFAULT_ARTIFACT_TYPES, type ArtifactErrorCode } from './artifacts.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<unknown>) {
    assert.ok(Buffer.isBuffer(chunk), 'the stream yields Buffers');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Metadata through `open`, releasing the file it opened. */
async function infoOf(store: ArtifactStore, serviceId: string, filename: string) {
  const { info, stream } = await store.open(serviceId, filename);
  stream.destroy();
  return info;
}

/** `data` in `size`-byte chunks, one per tick, like a network upload. */
async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) {
    await setImmediate();
    yield data.subarray(at, at + size);
  }
}

/** Asserts `promise` rejects with an ArtifactError of `code`. */
async function rejectsWith(promise: Promise<unknown>, code: ArtifactErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ArtifactError, `expected ArtifactError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    return true;
  });
}

function throwsWith(fn: () => unknown, code: ArtifactErrorCode, label: string): void {
  assert.throws(
    fn,
    (error: unknown) => error instanceof ArtifactError && error.code === code,
    `${label} should be refused with ${code}`,
  );
}

describe('ArtifactStore', function () {
  let root: string;
  let dir: string;
  let store: ArtifactStore;
  let service: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'faas-artifacts-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(root, 'store-'));
    store = new ArtifactStore({ dir, maxBytes: 2 * 1024 * 1024 });
    service = randomUUID();
  });

  describe('round trip', () => {
    it('saves a buffer and opens identical bytes and sha256', async () => {
      const data = Buffer.from('hello artifact\n');
      const saved = await store.save(service, 'hello.txt', 'text/plain', data);
      assert.equal(saved.service_id, service);
      assert.equal(saved.filename, 'hello.txt');
      assert.equal(saved.content_type, 'text/plain');
      assert.equal(saved.size_bytes, data.length);
      assert.equal(saved.sha256, sha256(data));
      assert.equal(saved.replaced, false);
      assert.equal(new Date(saved.uploaded_at).toISOString(), saved.uploaded_at);

      const { info, stream } = await store.open(service, 'hello.txt');
      assert.deepEqual(await readAll(stream), data);
      const { replaced: _replaced, ...withoutReplaced } = saved;
      assert.deepEqual(info, withoutReplaced);
      assert.equal('replaced' in info, false);
    });

    it('saves a multi-chunk async iterable', async () => {
      const data = randomBytes(100_003);
      const saved = await store.save(service, 'bundle.tar.gz', 'application/gzip', chunked(data, 4096));
      assert.equal(saved.size_bytes, data.length);
      assert.equal(saved.sha256, sha256(data));
      const { info, stream } = await store.open(service, 'bundle.tar.gz');
      assert.equal(info.sha256, sha256(data));
      assert.deepEqual(await readAll(stream), data);
    });

    it('saves a 1 MiB random buffer', async () => {
      const data = randomBytes(1024 * 1024);
      const saved = await store.save(service, 'big.bin', 'application/octet-stream', data);
      assert.equal(saved.size_bytes, 1024 * 1024);
      const { info, stream } = await store.open(service, 'big.bin');
      const back = await readAll(stream);
      assert.equal(sha256(back), sha256(data));
      assert.equal(info.sha256, sha256(data));
      assert.ok(back.equals(data));
    });

    it('saves from a Readable stream', async () => {
      const data = randomBytes(50_000);
      const saved = await store.save(service, 'fn.wasm', 'application/wasm', Readable.from(chunked(data, 1000)));
      assert.equal(saved.sha256, sha256(data));
      assert.deepEqual(await readAll((await store.open(service, 'fn.wasm')).stream), data);
    });

    it('stores an empty artifact', async () => {
      const saved = await store.save(service, 'empty.json', 'application/json', Buffer.alloc(0));
      assert.equal(saved.size_bytes, 0);
      assert.equal(saved.sha256, sha256(Buffer.alloc(0)));
      assert.equal((await readAll((await store.open(service, 'empty.json')).stream)).length, 0);
    });

    it('writes the artifact and a sidecar in .meta/ under the service folder', async () => {
      await store.save(service, 'a.zip', 'application/zip', Buffer.from('zip'));
      assert.deepEqual((await readdir(path.join(dir, service))).sort(), ['.meta', 'a.zip']);
      assert.deepEqual(await readdir(path.join(dir, service, '.meta')), ['a.zip.meta.json']);
    });

    it('normalises an upper-case service id to lower case', async () => {
      const saved = await store.save(service.toUpperCase(), 'x.txt', 'text/plain', Buffer.from('x'));
      assert.equal(saved.service_id, service);
      assert.equal((await infoOf(store, service, 'x.txt')).sha256, saved.sha256);
    });
  });

  describe('size limit', () => {
    const limit = 1024;
    let small: ArtifactStore;
    beforeEach(() => {
      small = new ArtifactStore({ dir, maxBytes: limit });
    });

    /** Only the (empty) .meta folder may remain in the service folder. */
    async function assertNothingLeft(): Promise<void> {
      const entries = await readdir(path.join(dir, service)).catch(() => []);
      assert.deepEqual(
        entries.filter((e) => e !== '.meta'),
        [],
      );
      assert.deepEqual(await readdir(path.join(dir, service, '.meta')).catch(() => []), []);
    }

    it('accepts exactly maxBytes', async () => {
      const data = randomBytes(limit);
      assert.equal((await small.save(service, 'exact.bin', 'application/octet-stream', data)).size_bytes, limit);
      assert.equal((await small.save(service, 'exact2.bin', 'application/octet-stream', chunked(data, 100))).size_bytes, limit);
    });

    it('rejects maxBytes + 1 as a buffer with too_large and leaves no file', async () => {
      await rejectsWith(small.save(service, 'over.bin', 'application/octet-stream', randomBytes(limit + 1)), 'too_large');
      await assertNothingLeft();
      await rejectsWith(small.open(service, 'over.bin'), 'not_found');
    });

    it('rejects maxBytes + 1 in chunks with too_large and leaves no temp file', async () => {
      await rejectsWith(small.save(service, 'over.bin', 'application/octet-stream', chunked(randomBytes(limit + 1), 100)), 'too_large');
      await assertNothingLeft();
    });

    it('stops reading the source as soon as the limit is exceeded', async () => {
      let pulled = 0;
      async function* endless(): AsyncGenerator<Buffer> {
        for (;;) {
          await setImmediate();
          pulled++;
          yield Buffer.alloc(100, 1);
        }
      }
      await rejectsWith(small.save(service, 'endless.bin', 'application/octet-stream', endless()), 'too_large');
      assert.equal(pulled, Math.floor(limit / 100) + 1);
      await assertNothingLeft();
    });

    it('does not destroy a stream source it refused', async () => {
      const source = Readable.from(chunked(randomBytes(limit * 3), 256));
      await rejectsWith(small.save(service, 'over.bin', 'application/octet-stream', source), 'too_large');
      assert.equal(source.destroyed, false);
      source.destroy();
    });

    it('keeps the previous artifact when a replacement is too large', async () => {
      const original = Buffer.from('original');
      await small.save(service, 'keep.txt', 'text/plain', original);
      await rejectsWith(small.save(service, 'keep.txt', 'text/plain', randomBytes(limit + 1)), 'too_large');
      const { info, stream } = await small.open(service, 'keep.txt');
      assert.equal(info.sha256, sha256(original));
      assert.deepEqual(await readAll(stream), original);
      assert.deepEqual((await readdir(path.join(dir, service))).sort(), ['.meta', 'keep.txt']);
    });

    it('cleans up when the source fails mid-way', async () => {
      async function* failing(): AsyncGenerator<Buffer> {
        yield Buffer.from('partial');
        await setImmediate();
        throw new Error('client went away');
      }
      await assert.rejects(store.save(service, 'broken.bin', 'application/octet-stream', failing()), /client went away/);
      const entries = await readdir(path.join(dir, service));
      assert.deepEqual(entries, ['.meta']);
    });
  });

  describe('names and service ids', () => {
    const bad: Array<[string, string]> = [
      ['../x', 'parent traversal'],
      ['..', 'dot-dot'],
      ['.', 'dot'],
      ['.env', 'dotfile'],
      ['.meta', 'the metadata folder'],
      ['.tmp-abc', 'a temp file name'],
      ['a/b', 'slash'],
      ['/etc/passwd', 'absolute path'],
      ['a\\b', 'backslash'],
      ['..\\x', 'windows traversal'],
      ['%2e%2e%2fx', 'percent-encoded traversal'],
      ['..%2fx', 'half-encoded traversal'],
      ['a%00b', 'percent-encoded NUL'],
      ['', 'empty'],
      ['a'.repeat(201), '201 characters'],
      ['a\0b', 'NUL'],
      ['x.zip\0.txt', 'NUL before an extension'],
      ['naïve.zip', 'accented letter'],
      ['函数.zip', 'CJK'],
      ['a\u202Egnp.exe', 'bidi override'],
      ['ﬁle.zip', 'ligature'],
      ['a b.zip', 'space'],
      ['a:b', 'colon'],
      ['x\n.zip', 'newline'],
      ['CON', 'windows device'],
      ['nul.txt', 'windows device with extension'],
    ];

    for (const [name, label] of bad) {
      it(`refuses ${label}`, async () => {
        throwsWith(() => store.validateName(name), 'invalid_name', label);
        await rejectsWith(store.save(service, name, 'text/plain', Buffer.from('x')), 'invalid_name');
        await rejectsWith(store.open(service, name), 'invalid_name');
      });
    }

    it('wrote nothing for any refused name', async () => {
      for (const [name] of bad) await store.save(service, name, 'text/plain', Buffer.from('x')).catch(() => undefined);
      assert.deepEqual(await readdir(dir), []);
      assert.deepEqual(await readdir(root).then((entries) => entries.filter((e) => !e.startsWith('store-'))), []);
    });

    it('accepts ordinary names unchanged', () => {
      for (const name of ['a', 'function.zip', 'A-b_c.1.tar.gz', 'v1..2.zip', 'x.', 'console.log', 'a'.repeat(200)]) {
        assert.equal(store.validateName(name), name);
      }
    });

    it('refuses service ids that are not UUIDs', async () => {
      const ids = ['', 'abc', '..', `../${service}`, `${service}/..`, `${service}x`, service.replace(/-/g, ''), `{${service}}`, '00000000-0000-0000-0000-00000000000g'];
      for (const id of ids) {
        throwsWith(() => store.validateServiceId(id), 'invalid_name', `service id ${JSON.stringify(id)}`);
        await rejectsWith(store.save(id, 'a.txt', 'text/plain', Buffer.from('x')), 'invalid_name');
        await rejectsWith(store.open(id, 'a.txt'), 'invalid_name');
        await rejectsWith(store.list(id), 'invalid_name');
      }
      assert.deepEqual(await readdir(dir), []);
    });
  });

  describe('content types', () => {
    it('normalises case and strips parameters', async () => {
      const saved = await store.save(service, 'a.zip', 'Application/ZIP; name="a.zip"', Buffer.from('z'));
      assert.equal(saved.content_type, 'application/zip');
      assert.equal((await infoOf(store, service, 'a.zip')).content_type, 'application/zip');
      assert.equal((await store.save(service, 'b.txt', ' text/plain ; charset=utf-8', Buffer.from('b'))).content_type, 'text/plain');
    });

    it('accepts every default type', async () => {
      for (const [i, type] of DEFAULT_ARTIFACT_TYPES.entries()) {
        assert.equal((await store.save(service, `f${i}`, type, Buffer.from('x'))).content_type, type);
      }
    });

    it('refuses unsupported, missing and malformed types and writes nothing', async () => {
      for (const type of ['text/html', 'image/svg+xml', 'application/x-sh', '', undefined, 'zip', 'application/zip/x', ';application/zip']) {
        await rejectsWith(store.save(service, 'a.bin', type, Buffer.from('x')), 'unsupported_type');
      }
      assert.deepEqual(await readdir(dir), []);
    });

    it('honours a custom allow list', async () => {
      const custom = new ArtifactStore({ dir, maxBytes: 100, allowedTypes: ['Image/PNG'] });
      assert.equal((await custom.save(service, 'logo.png', 'image/png', Buffer.from('png'))).content_type, 'image/png');
      await rejectsWith(custom.save(service, 'a.zip', 'application/zip', Buffer.from('z')), 'unsupported_type');
    });
  });

  describe('replace, list, open', () => {
    it('flags the second upload of a name as a replacement', async () => {
      const first = await store.save(service, 'app.zip', 'application/zip', Buffer.from('one'));
      const second = await store.save(service, 'app.zip', 'application/zip', Buffer.from('second'));
      assert.equal(first.replaced, false);
      assert.equal(second.replaced, true);
      const { info, stream } = await store.open(service, 'app.zip');
      assert.equal(info.sha256, sha256(Buffer.from('second')));
      assert.equal((await readAll(stream)).toString(), 'second');
      assert.equal((await store.list(service)).length, 1);
    });

    it('an open stream keeps reading the version it opened across a replace', async () => {
      const before = randomBytes(64 * 1024);
      const after = randomBytes(10);
      await store.save(service, 'v.bin', 'application/octet-stream', before);
      const { info, stream } = await store.open(service, 'v.bin');
      await store.save(service, 'v.bin', 'application/octet-stream', after);
      assert.ok((await readAll(stream)).equals(before));
      assert.equal(info.sha256, sha256(before));
      assert.equal((await infoOf(store, service, 'v.bin')).sha256, sha256(after));
    });

    it('serialises concurrent uploads of one name: exactly one is a replacement and metadata matches', async () => {
      const bodies = [randomBytes(3000), randomBytes(5000)];
      const results = await Promise.all(bodies.map((b) => store.save(service, 'race.bin', 'application/octet-stream', chunked(b, 512))));
      assert.deepEqual(results.map((r) => r.replaced).sort(), [false, true]);
      const { info, stream } = await store.open(service, 'race.bin');
      const back = await readAll(stream);
      assert.equal(info.sha256, sha256(back));
      assert.equal(info.size_bytes, back.length);
    });

    it('lists metadata of real artifacts only', async () => {
      const b = await store.save(service, 'b.zip', 'application/zip', Buffer.from('bbb'));
      const a = await store.save(service, 'a.json', 'application/json', Buffer.from('{}'));
      const folder = path.join(dir, service);
      await writeFile(path.join(folder, '.tmp-leftover'), 'partial');
      await writeFile(path.join(folder, '.hidden'), 'x');
      await writeFile(path.join(folder, 'orphan.bin'), 'no sidecar');
      await mkdir(path.join(folder, 'subdir'));
      await symlink(path.join(folder, 'b.zip'), path.join(folder, 'link.zip'));
      await writeFile(path.join(folder, '.meta', 'link.zip.meta.json'), JSON.stringify({ ...b, filename: 'link.zip', replaced: undefined }));
      await writeFile(path.join(folder, '.meta', 'ghost.zip.meta.json'), JSON.stringify({ ...b, filename: 'ghost.zip' }));

      const strip = ({ replaced: _r, ...info }: typeof a) => info;
      assert.deepEqual(await store.list(service), [strip(a), strip(b)]);
    });

    it('lists nothing for an unknown service', async () => {
      assert.deepEqual(await store.list(randomUUID()), []);
    });

    it('refuses to open a symlink planted in the service folder', async () => {
      const secret = path.join(root, `secret-${randomUUID()}.txt`);
      await writeFile(secret, 'top secret');
      await store.save(service, 'real.txt', 'text/plain', Buffer.from('real'));
      const folder = path.join(dir, service);
      await symlink(secret, path.join(folder, 'evil.txt'));
      // A matching sidecar, so only the symlink check stands in the way.
      await writeFile(
        path.join(folder, '.meta', 'evil.txt.meta.json'),
        JSON.stringify({ service_id: service, filename: 'evil.txt', content_type: 'text/plain', size_bytes: 10, sha256: sha256(Buffer.from('top secret')), uploaded_at: new Date().toISOString() }),
      );
      await rejectsWith(store.open(service, 'evil.txt'), 'not_found');
      await symlink(path.join(folder, 'real.txt'), path.join(folder, 'alias.txt'));
      await rejectsWith(store.open(service, 'alias.txt'), 'not_found');
      assert.deepEqual((await store.list(service)).map((i) => i.filename), ['real.txt']);
      await rm(secret);
    });

    it('answers not_found for a missing artifact, service or sidecar, and for a directory', async () => {
      await rejectsWith(store.open(randomUUID(), 'nothing.zip'), 'not_found');
      await store.save(service, 'here.zip', 'application/zip', Buffer.from('z'));
      await rejectsWith(store.open(service, 'missing.zip'), 'not_found');
      await writeFile(path.join(dir, service, 'nometa.zip'), 'z');
      await rejectsWith(store.open(service, 'nometa.zip'), 'not_found');
      await mkdir(path.join(dir, service, 'folder'));
      await rejectsWith(store.open(service, 'folder'), 'not_found');
    });

    it('replacing over a planted symlink replaces the link, not its target', async () => {
      const outside = path.join(root, `outside-${randomUUID()}.txt`);
      await writeFile(outside, 'untouched');
      await store.save(service, 'seed.txt', 'text/plain', Buffer.from('seed'));
      await symlink(outside, path.join(dir, service, 'victim.txt'));
      await store.save(service, 'victim.txt', 'text/plain', Buffer.from('new'));
      assert.equal((await stat(outside)).size, 'untouched'.length);
      assert.equal((await readAll((await store.open(service, 'victim.txt')).stream)).toString(), 'new');
      await rm(outside);
    });
  });

  describe('errors', () => {
    it('maps codes to HTTP statuses', () => {
      assert.equal(artifactStatus('invalid_name'), 422);
      assert.equal(artifactStatus('too_large'), 413);
      assert.equal(artifactStatus('unsupported_type'), 415);
      assert.equal(artifactStatus('not_found'), 404);
    });

    it('is an Error with a code and a message', () => {
      const error = new ArtifactError('too_large');
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'ArtifactError');
      assert.equal(error.code, 'too_large');
      assert.ok(error.message.length > 0);
    });

    it('refuses a bad maxBytes', () => {
      assert.throws(() => new ArtifactStore({ dir, maxBytes: -1 }), RangeError);
      assert.throws(() => new ArtifactStore({ dir, maxBytes: 1.5 }), RangeError);
      assert.throws(() => new ArtifactStore({ dir: '', maxBytes: 1 }), TypeError);
    });
  });
});
