/**
 * Errors of the REST API as RFC 9457 problem documents. Every error has a stable `type`
 * (`urn:faasbilling:problem:<code>`), a human `detail` and, for validation, the invalid fields.
 * The status is chosen by an exhaustive switch, like the stages' BillingError.
 */
import type { z } from 'zod';
import type { Problem } from '../contract/problem.js';

export type ApiErrorCode =
  | 'bad_request'
  | 'malformed_json'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'bill_final'
  | 'bill_not_final'
  | 'plan_in_use'
  | 'already_delivered'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'validation_failed'
  | 'payload_not_stored'
  | 'rate_limited'
  | 'database_unavailable'
  | 'deploy_unavailable'
  | 'deploy_failed'
  | 'deploy_timeout'
  | 'webhook_failed'
  | 'internal';

export function apiStatusFor(code: ApiErrorCode): number {
  switch (code) {
    case 'bad_request':
    case 'malformed_json':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
      return 404;
    case 'method_not_allowed':
      return 405;
    case 'conflict':
    case 'bill_final':
    case 'bill_not_final':
    case 'plan_in_use':
    case 'already_delivered':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'validation_failed':
    case 'payload_not_stored':
      return 422;
    case 'rate_limited':
      return 429;
    case 'deploy_failed':
    case 'webhook_failed':
      return 502;
    case 'database_unavailable':
    case 'deploy_unavailable':
      return 503;
    case 'deploy_timeout':
      return 504;
    case 'internal':
      return 500;
  }
}

/** One invalid field of a request: where (`body.price_per_invocation`, `query.limit`) and why. */
export interface InvalidField {
  name: string;
  reason: string;
}

export interface ApiProblem extends Problem {
  invalid_fields?: InvalidField[];
}

/** An error the API answers with a problem document. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly invalidFields?: InvalidField[],
    readonly headers: Record<string, string> = {},
    /** Extension members of the problem document (RFC 9457 §3.2), e.g. the delivery a failed redelivery logged. */
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = apiStatusFor(code);
  }

  toProblem(): ApiProblem {
    return {
      ...this.extensions,
      type: `urn:faasbilling:problem:${this.code}`,
      title: this.code.replaceAll('_', ' '),
      status: this.status,
      detail: this.message,
      ...(this.invalidFields ? { invalid_fields: this.invalidFields } : {}),
    };
  }
}

/** A 404 that says the same whether the thing does not exist or belongs to another tenant. */
export const notFound = (what: string, id: string): ApiError => new ApiError('not_found', `${what} ${id} was not found`);

/** The invalid fields of a zod error, prefixed by the part of the request they are in. */
export function invalidFieldsOf(part: string, error: z.ZodError): InvalidField[] {
  return error.issues.map((issue) => ({
    name: [part, ...issue.path.map(String)].join('.'),
    reason: issue.message,
  }));
}
