/** HTTP helpers for tests that talk to a function or the broker over real HTTP. */
import assert from 'node:assert/strict';
import { HTTP, type CloudEvent } from 'cloudevents';
import { problemContentType, type Problem } from '../../src/contract/problem.js';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or the text when it is not JSON. */
  json: unknown;
}

export async function post(url: string, headers: Record<string, string>, body: string): Promise<Reply> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Posts a CloudEvent in binary mode (as the Broker delivers). */
export function postBinary(url: string, event: CloudEvent<unknown>): Promise<Reply> {
  const message = HTTP.binary(event);
  return post(url, message.headers as Record<string, string>, message.body as string);
}

/** Posts a CloudEvent in structured mode (application/cloudevents+json). */
export function postStructured(url: string, event: CloudEvent<unknown>): Promise<Reply> {
  const message = HTTP.structured(event);
  return post(url, message.headers as Record<string, string>, message.body as string);
}

/** Asserts a problem+json reply with that status and a non-empty detail, and returns it. */
export function assertProblem(reply: Reply, status: number): Problem {
  assert.equal(reply.status, status, reply.text);
  assert.ok((reply.headers.get('content-type') ?? '').startsWith(problemContentType), reply.headers.get('content-type') ?? '');
  const problem = reply.json as Problem;
  assert.equal(problem.status, status);
  assert.ok(problem.detail.length > 0);
  return problem;
}
