/**
 * RFC 9457 problem details (`application/problem+json`) and the typed error every stage throws.
 * The HTTP status is chosen by an exhaustive switch over error codes, so a new code cannot be
 * added without deciding how clients see it.
 */

export const problemContentType = 'application/problem+json';

/** One rejected item of a batch: its position in the batch and why. */
export interface ItemError {
  index: number;
  reason: string;
  detail: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Items of a batch that were rejected (the others were accepted). */
  errors?: ItemError[];
  accepted?: number;
  rejected?: number;
}

export type ErrorCode =
  | 'malformed_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'batch_too_large'
  | 'invalid_event'
  | 'invalid_events'
  | 'buffer_unavailable'
  | 'database_unavailable'
  | 'internal';

/** The HTTP status for each error code. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'malformed_json':
      return 400;
    case 'unsupported_media_type':
      return 415;
    case 'payload_too_large':
    case 'batch_too_large':
      return 413;
    case 'invalid_event':
    case 'invalid_events':
      return 422;
    case 'buffer_unavailable':
    case 'database_unavailable':
      return 503;
    case 'internal':
      return 500;
  }
}

/** An error a user can act on: code, status, whether retrying can help, and what went wrong. */
export class BillingError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable: boolean = statusFor(code) >= 500,
    readonly errors?: ItemError[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BillingError';
    this.status = statusFor(code);
  }

  /** The problem document this error is shown as. */
  toProblem(extra: Partial<Problem> = {}): Problem {
    return {
      type: `urn:faasbilling:problem:${this.code}`,
      title: this.code.replaceAll('_', ' '),
      status: this.status,
      detail: this.message,
      ...(this.errors ? { errors: this.errors } : {}),
      ...extra,
    };
  }
}

/** Type guard for a parsed problem document. */
export function isProblem(value: unknown): value is Problem {
  return (
    typeof value === 'object' && value !== null && 'status' in value && 'title' in value && 'type' in value
  );
}
