import { badInput } from '../errors.js';

/**
 * The rows one operation may ask for across all its lists (GRAPHQL_MAX_LIST_ITEMS). graphql-armor
 * prices `first: 100` only when it is a literal: with `first: $n` fifteen aliased
 * `sessions { messages }` pairs would fetch 150 000 rows at a cost it accepts. Each page charges
 * its `first` here, when its field resolves, so nested pages multiply out honestly.
 */
export class ListBudget {
  #left: number;

  constructor(readonly max: number) {
    this.#left = max;
  }

  charge(items: number): void {
    this.#left -= items;
    if (this.#left < 0) {
      throw badInput(
        `This operation asks for more than ${this.max} list items in total; ask for smaller pages.`,
        { field: 'first' },
      );
    }
  }
}
