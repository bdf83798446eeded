/**
 * The most recent ids seen, at most `capacity` of them (the oldest is forgotten first): "was this one
 * seen already?" for things that must happen once per id, such as counting the refusal of an input that
 * comes again.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Remembers `id`; true when it was not remembered yet. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
    return true;
  }
}
