/**
 * A bounded set of recently seen keys: the oldest key is forgotten when full. Cheap per-process
 * dedup in front of the database's own unique key, which stays the guarantee.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      // A Set iterates in insertion order, so the first key is the oldest.
      const oldest = this.keys.values().next().value;
      if (oldest !== undefined) this.keys.delete(oldest);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}
