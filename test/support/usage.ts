/** Builders of usage events and records for tests. */
import { randomUUID } from 'node:crypto';
import type { UsageRecord } from '../../src/contract/usage.js';
import { EventType } from '../../src/contract/events.js';

/** A valid usage record (as the buffer holds it), overridable field by field. */
export function usageRecord(overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    source: '/test/producer',
    id: randomUUID(),
    time: new Date().toISOString(),
    tenant_id: 'demo',
    service: 'waiter',
    revision: 'waiter-00001',
    invocations: 1,
    duration_ms: 123.456,
    memory_mb: 128,
    cpu_ms: 50,
    cold_start: false,
    error: false,
    labels: { method: 'GET' },
    ...overrides,
  };
}

/** A structured-mode usage CloudEvent (JSON object) for batches and structured posts. */
export function usageCloudEvent(overrides: { id?: string; source?: string; time?: string; data?: Record<string, unknown> } = {}) {
  return {
    specversion: '1.0',
    type: EventType.usage,
    source: overrides.source ?? '/test/producer',
    id: overrides.id ?? randomUUID(),
    time: overrides.time ?? new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { tenant_id: 'demo', service: 'waiter', revision: 'waiter-00001', duration_ms: 12.5, memory_mb: 256, ...overrides.data },
  };
}
